#include "convert/calibration.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "convert/converter.h"
#include "qrun/error.h"
#include "qrun/model_file.h"
#include "src/format/layer_tensor_name.h"
#include "src/format/text_file.h"

namespace qrun {

namespace {

// A column's floor, as a fraction of the mean importance: small enough that silent
// columns hardly pull the scale, large enough that a block whose columns all stayed
// silent on the text is still quantized for its plain error, not at random.
constexpr float kImportanceFloor = 0.01f;

// Which input a projection reads: "layers.3.w2" -> (3, FfnHidden); false for tensors
// that are not projections.
bool tensor_input(const std::string& tensor, std::pair<int, MatrixInput>* key) {
  if (tensor == "output") {
    *key = {-1, MatrixInput::Head};
    return true;
  }
  int layer = -1;
  std::string what;
  if (!split_layer_name(tensor, "layers.", &layer, &what)) return false;
  if (what == "wq" || what == "wk" || what == "wv") *key = {layer, MatrixInput::AttentionIn};
  else if (what == "wo") *key = {layer, MatrixInput::AttentionOut};
  else if (what == "w1" || what == "w3" || what == "w1_experts" || what == "w3_experts" || what == "w1_shared" ||
           what == "w3_shared")
    *key = {layer, MatrixInput::FfnIn};
  else if (what == "w2" || what == "w2_experts") *key = {layer, MatrixInput::FfnHidden};
  else if (what == "w2_shared") *key = {layer, MatrixInput::SharedHidden};
  else return false;
  return true;
}

std::string read_calibration_text(const std::string& path) {
  std::string text = read_text_file(path, "calibration text");
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw Error(path, -1, "the calibration text is empty");
  return text;
}

// A private folder for the F16 copy, removed with everything in it when this goes out
// of scope (errors included).
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "qrun-calibrate-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw Error(tmpl, -1, std::string("cannot create a temporary folder: ") + std::strerror(errno));
    path_ = tmpl;
  }
  ~TempDir() { remove(); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  void remove() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace

void InputStats::add(int layer, MatrixInput which, const float* x, int n_tokens, int64_t cols) {
  Sums& s = sums_[{layer, which}];
  if (s.squares.empty()) s.squares.assign(static_cast<size_t>(cols), 0.0);
  if (static_cast<int64_t>(s.squares.size()) != cols) throw Error("calibration: an input changed its width");
  for (int i = 0; i < n_tokens; ++i)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = x[i * cols + c];
      s.squares[static_cast<size_t>(c)] += v * v;
    }
  s.tokens += n_tokens;
}

const InputStats::Sums* InputStats::find(const std::string& tensor) const {
  std::pair<int, MatrixInput> key;
  if (!tensor_input(tensor, &key)) return nullptr;
  const auto it = sums_.find(key);
  return it == sums_.end() || it->second.tokens == 0 ? nullptr : &it->second;
}

std::vector<float> InputStats::mean_squares(const std::string& tensor) const {
  const Sums* s = find(tensor);
  if (!s) return {};
  std::vector<float> out(s->squares.size());
  for (size_t c = 0; c < out.size(); ++c) out[c] = static_cast<float>(s->squares[c] / static_cast<double>(s->tokens));
  return out;
}

int64_t InputStats::tokens(const std::string& tensor) const {
  const Sums* s = find(tensor);
  return s ? s->tokens : 0;
}

std::vector<float> importance_from_mean_squares(std::span<const float> mean_squares) {
  double sum = 0;
  for (float v : mean_squares) sum += std::max(v, 0.0f);
  const double mean = mean_squares.empty() ? 0.0 : sum / static_cast<double>(mean_squares.size());
  std::vector<float> out(mean_squares.size(), 1.0f);  // nothing seen: plain error
  if (!(mean > 0) || !std::isfinite(mean)) return out;
  for (size_t c = 0; c < out.size(); ++c)
    out[c] = static_cast<float>(std::max(mean_squares[c], 0.0f) / mean) + kImportanceFloor;
  return out;
}

InputStats collect_input_stats(Model& model, std::span<const int32_t> tokens, const CalibrationOptions& options) {
  const int ctx = std::min(options.context, model.context_length());
  if (ctx < 2) throw Error("calibration context must be at least 2 tokens");
  if (tokens.size() < 2) throw Error("calibration text has fewer than 2 tokens");
  // Windows of ctx tokens; the last one may be shorter (a text under one window still
  // counts) but not a lone token, which would only repeat BOS.
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  const int windows = static_cast<int>(std::min<int64_t>(options.chunks, (n_tokens - 1 + ctx - 1) / ctx));
  const int vocab = static_cast<int>(model.hparams().vocab_size);
  const int32_t bos = model.tokenizer().bos_id();

  InputStats stats;
  model.set_input_observer([&stats](int layer, MatrixInput which, const float* x, int n, int64_t cols) {
    stats.add(layer, which, x, n, cols);
  });
  // The observer refers to `stats`: take it off the model however this returns.
  struct Detach {
    Model& model;
    ~Detach() { model.set_input_observer(nullptr); }
  } detach{model};
  // Every token's logits, so the head sees every final hidden state; asked for one
  // batch at a time, so the logits buffer stays batch * vocab.
  const int step = std::max(1, model.plan().batch);
  std::vector<float> logits(static_cast<size_t>(step) * static_cast<size_t>(vocab));
  std::vector<int32_t> window;
  for (int w = 0; w < windows; ++w) {
    const int64_t begin = int64_t{w} * ctx, end = std::min(n_tokens, begin + ctx);
    window.assign(tokens.begin() + begin, tokens.begin() + end);
    if (bos >= 0) window[0] = bos;
    model.reset();
    for (size_t done = 0; done < window.size(); done += static_cast<size_t>(step)) {
      const size_t n = std::min(window.size() - done, static_cast<size_t>(step));
      model.forward(std::span(window).subspan(done, n), logits.data(), true);
    }
    if (options.progress) options.progress(w + 1, windows);
  }
  return stats;
}

std::vector<float> column_importance(const InputStats& stats, const std::string& tensor, int64_t cols,
                                     const std::string& source) {
  std::vector<float> importance = importance_from_mean_squares(stats.mean_squares(tensor));
  if (!importance.empty() && static_cast<int64_t>(importance.size()) != cols)
    throw Error(source, -1, "calibration saw " + std::to_string(importance.size()) + " input columns for '" + tensor +
                                "', it has " + std::to_string(cols));
  return importance;
}

InputStats calibrate_on_f16_copy(const CalibrationOptions& options, int threads,
                                 const std::function<void(const std::string& f16_path)>& write_f16) {
  if (options.chunks < 1) throw Error("calibration chunks must be at least 1");
  if (options.context < 2) throw Error("calibration context must be at least 2 tokens");
  const std::string text = read_calibration_text(options.text_file);

  TempDir dir;
  const std::string f16_path = (dir.path() / "model.f16").string();
  write_f16(f16_path);

  // Windows past the trained context would calibrate on activations the model never makes.
  CalibrationOptions capped = options;
  capped.context = std::min(options.context, static_cast<int>(ModelFile(f16_path).hparams().max_seq_len));
  RuntimeOptions ro;
  ro.threads = threads;
  ro.context = capped.context;
  Model model(f16_path, ro);
  // The mapping keeps the pages: the file can go now, so a run interrupted by a signal
  // (which skips destructors) while the model runs leaves nothing behind, and one
  // interrupted during the F16 conversion at most the empty folder (the writer's
  // temporary has no name, convert/model_writer.h).
  dir.remove();

  const std::vector<int32_t> tokens = model.tokenizer().encode(text, false, false);
  if (tokens.size() < 2)
    throw Error(options.text_file, -1, "the calibration text has " + std::to_string(tokens.size()) +
                                           " token(s); at least 2 are needed");
  return collect_input_stats(model, tokens, capped);
}

InputStats calibrate_hf_checkpoint(const std::string& hf_dir, const CalibrationOptions& options, int threads,
                                   const std::vector<LoraOption>& lora) {
  return calibrate_on_f16_copy(options, threads, [&](const std::string& f16_path) {
    ConvertOptions f16;
    f16.weight_type = DType::F16;
    f16.threads = threads;
    f16.lora = lora;
    f16.progress = options.convert_progress;
    convert_hf_checkpoint(hf_dir, f16_path, f16);
  });
}

}  // namespace qrun
