// qconvert --calibrate on stories260K: the collected input statistics against a
// recomputation, the importance-weighted error of every quantized matrix, KL divergence
// on a text other than the calibration text, GGUF input, and refused inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/gguf_stories.h"
#include "common/model_fixture.h"
#include "common/run_command.h"
#include "common/safetensors_writer.h"
#include "convert/calibration.h"
#include "convert/converter.h"
#include "convert/gguf_convert.h"
#include "convert/safetensors.h"
#include "qrun/error.h"
#include "qrun/model.h"
#include "qrun/model_file.h"
#include "qrun/model_layout.h"
#include "qrun/perplexity.h"
#include "quant/quantize.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

// The in-domain excerpt cut in two: the first half calibrates, the second evaluates.
struct Texts {
  ScratchDir dir;
  fs::path calibration = dir / "calibration.txt", evaluation = dir / "evaluation.txt";
  Texts() {
    const std::string all = test::read_text(test::shared_dir() / "corpus/tinystories_valid_excerpt.txt");
    const size_t half = all.find(' ', all.size() / 2);
    test::write_text(calibration, all.substr(0, half));
    test::write_text(evaluation, all.substr(half + 1));
  }
};

const Texts& texts() {
  static const Texts t;
  return t;
}

RuntimeOptions runtime(int context) {
  RuntimeOptions ro;
  ro.threads = 2;
  ro.context = context;
  return ro;
}

// The windows collect_input_stats runs: ctx tokens each, BOS first.
std::vector<std::vector<int32_t>> windows_of(const Model& m, const std::vector<int32_t>& tokens, int ctx, int chunks) {
  std::vector<std::vector<int32_t>> out;
  for (size_t b = 0; b + 1 < tokens.size() && static_cast<int>(out.size()) < chunks; b += static_cast<size_t>(ctx)) {
    out.emplace_back(tokens.begin() + static_cast<std::ptrdiff_t>(b),
                     tokens.begin() + static_cast<std::ptrdiff_t>(std::min(tokens.size(), b + ctx)));
    out.back()[0] = m.tokenizer().bos_id();
  }
  return out;
}

class CalibrationStats : public ::testing::Test {
 protected:
  static constexpr int kContext = 128, kChunks = 4;
  static void SetUpTestSuite() {
    model_ = new Model(test::converted_stories(DType::F16).string(), runtime(kContext));
    tokens_ = model_->tokenizer().encode(test::read_text(texts().calibration), false, false);
    CalibrationOptions co;
    co.context = kContext;
    co.chunks = kChunks;
    stats_ = collect_input_stats(*model_, tokens_, co);
  }
  static void TearDownTestSuite() { delete model_; }
  static inline Model* model_ = nullptr;
  static inline std::vector<int32_t> tokens_;
  static inline InputStats stats_;
};

TEST_F(CalibrationStats, EveryProjectionInputHasFinitePositiveMeanSquaresOfItsWidth) {
  ASSERT_GT(tokens_.size(), size_t{kContext * kChunks});  // four full windows
  const auto& hp = model_->hparams();
  std::vector<TensorSpec> specs = expected_tensors(hp);
  specs.push_back({"output", hp.dim, hp.vocab_size, 2, -1, TensorRole::Output});  // tied: seen, never stored
  for (const TensorSpec& t : specs) {
    const std::vector<float> ms = stats_.mean_squares(t.name);
    if (t.role != TensorRole::Projection && t.role != TensorRole::Output) {
      EXPECT_TRUE(ms.empty()) << t.name;
      continue;
    }
    ASSERT_EQ(static_cast<int64_t>(ms.size()), t.cols) << t.name;
    EXPECT_EQ(stats_.tokens(t.name), kContext * kChunks) << t.name;
    for (size_t c = 0; c < ms.size(); ++c) {
      ASSERT_TRUE(std::isfinite(ms[c])) << t.name << " column " << c;
      ASSERT_GT(ms[c], 0.0f) << t.name << " column " << c;
    }
  }
}

// Layer 0's attention input depends on the token only: RMSNorm(embedding) * weight.
TEST_F(CalibrationStats, LayerZeroAttentionInputMatchesARecomputationFromTheEmbeddings) {
  const auto& hp = model_->hparams();
  const int64_t dim = hp.dim;
  const TensorView& emb = model_->file().get("tok_embeddings");
  const auto* norm = reinterpret_cast<const float*>(model_->file().get("layers.0.attention_norm").data);
  std::vector<double> sum(static_cast<size_t>(dim), 0.0);
  std::vector<float> x(static_cast<size_t>(dim));
  int64_t n = 0;
  for (const auto& w : windows_of(*model_, tokens_, kContext, kChunks))
    for (int32_t tok : w) {
      dequantize_row(emb.dtype, emb.data + tok * emb.row_bytes(), dim, x.data());
      double ss = 0;
      for (float v : x) ss += double(v) * v;
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(dim) + hp.norm_eps);
      for (int64_t c = 0; c < dim; ++c) {
        const double y = x[size_t(c)] * inv * norm[c];
        sum[size_t(c)] += y * y;
      }
      ++n;
    }
  const std::vector<float> wq = stats_.mean_squares("layers.0.wq"), wv = stats_.mean_squares("layers.0.wv");
  ASSERT_EQ(wq.size(), size_t(dim));
  EXPECT_EQ(wq, wv);  // one input, three readers
  for (int64_t c = 0; c < dim; ++c)
    EXPECT_NEAR(wq[size_t(c)], sum[size_t(c)] / double(n), 1e-4 * sum[size_t(c)] / double(n)) << "column " << c;
}

// The output head's statistics against the final normed states a separate observer
// records in whole-window forward calls (collect_input_stats goes batch by batch).
TEST_F(CalibrationStats, HeadInputMatchesTheFinalNormedStatesObservedSeparately) {
  const int64_t dim = model_->hparams().dim;
  std::vector<double> sum(static_cast<size_t>(dim), 0.0);
  int64_t n = 0;
  model_->set_input_observer([&](int layer, MatrixInput which, const float* x, int tokens, int64_t cols) {
    if (which != MatrixInput::Head) return;
    EXPECT_EQ(layer, -1);
    EXPECT_EQ(cols, dim);
    for (int i = 0; i < tokens; ++i)
      for (int64_t c = 0; c < cols; ++c) sum[size_t(c)] += double(x[i * cols + c]) * x[i * cols + c];
    n += tokens;
  });
  std::vector<float> logits(size_t(kContext) * model_->hparams().vocab_size);
  for (const auto& w : windows_of(*model_, tokens_, kContext, kChunks)) {
    model_->reset();
    model_->forward(w, logits.data(), true);
  }
  model_->set_input_observer(nullptr);
  ASSERT_EQ(n, kContext * kChunks);
  const std::vector<float> head = stats_.mean_squares("output");
  ASSERT_EQ(head.size(), size_t(dim));
  for (int64_t c = 0; c < dim; ++c)
    EXPECT_NEAR(head[size_t(c)], sum[size_t(c)] / double(n), 1e-5 * sum[size_t(c)] / double(n)) << "column " << c;
}

TEST(CalibrationImportance, NormalisedWithAFloorForSilentColumns) {
  const std::vector<float> ms = {0.0f, 1.0f, 3.0f, 0.0f};
  const std::vector<float> w = importance_from_mean_squares(ms);
  ASSERT_EQ(w.size(), 4u);
  EXPECT_GT(w[0], 0.0f);           // a silent column still counts
  EXPECT_LT(w[0], 0.05f * w[2]);   // but little
  EXPECT_NEAR(w[2] / w[1], 3.0, 0.05);
  EXPECT_EQ(importance_from_mean_squares(std::vector<float>(4, 0.0f)), std::vector<float>(4, 1.0f));
  EXPECT_TRUE(importance_from_mean_squares({}).empty());
}

// stories260K converted with calibration on the first half of the text.
const fs::path& calibrated_stories(DType type) {
  static ScratchDir dir;
  static std::map<DType, fs::path> done;
  auto it = done.find(type);
  if (it != done.end()) return it->second;
  const fs::path out = dir / ("stories260K.cal." + std::string(dtype_name(type)));
  ConvertOptions opt;
  opt.weight_type = type;
  opt.threads = 2;
  opt.calibration.text_file = texts().calibration.string();
  convert_hf_checkpoint(test::stories_dir().string(), out.string(), opt);
  return done.emplace(type, out).first->second;
}

// stories260K as an F32 GGUF file holds the checkpoint's weights exactly: calibrated,
// it must give the same F16 copy, the same statistics and so the same bytes in every
// tensor as the calibrated checkpoint, each quantized matrix unlike the plain conversion's.
TEST(CalibratedGguf, SameTensorsAsTheCalibratedCheckpoint) {
  ScratchDir dir;
  test::write_bytes(dir / "m.gguf", test::stories_gguf([](const std::string&) { return test::kGgmlF32; }));
  ConvertOptions opt;
  opt.weight_type = DType::Q8;
  opt.threads = 2;
  opt.calibration.text_file = texts().calibration.string();
  convert_gguf((dir / "m.gguf").string(), (dir / "m.q8").string(), opt);
  const ModelFile hf(calibrated_stories(DType::Q8).string()), gguf((dir / "m.q8").string());
  const ModelFile plain(test::converted_stories(DType::Q8).string());
  ASSERT_EQ(gguf.tensors().size(), hf.tensors().size());
  int calibrated = 0;
  for (const auto& t : hf.tensors()) {
    const TensorView& g = gguf.get(t.name);
    const size_t bytes = static_cast<size_t>(t.rows * t.row_bytes());
    ASSERT_EQ(g.dtype, t.dtype) << t.name;
    ASSERT_EQ(g.rows * g.row_bytes(), t.rows * t.row_bytes()) << t.name;
    EXPECT_EQ(std::memcmp(g.data, t.data, bytes), 0) << t.name;
    if (dtype_is_quantized(t.dtype) && std::memcmp(plain.get(t.name).data, t.data, bytes) != 0) ++calibrated;
  }
  EXPECT_EQ(calibrated, 7 * 5);
}

class CalibratedConversion : public ::testing::TestWithParam<DType> {};

// The objective calibration targets, sum_rc E[x_c^2] (Wq_rc - W_rc)^2, computed from the
// written files with the statistics the converter collected (same text, same windows).
TEST_P(CalibratedConversion, LowersTheImportanceWeightedErrorOfEveryQuantizedMatrix) {
  const DType type = GetParam();
  Model f16(test::converted_stories(DType::F16).string(), runtime(512));
  const std::vector<int32_t> tokens = f16.tokenizer().encode(test::read_text(texts().calibration), false, false);
  const InputStats stats = collect_input_stats(f16, tokens, CalibrationOptions{});
  const ModelFile plain(test::converted_stories(type).string()), cal(calibrated_stories(type).string());
  const SafetensorsCheckpoint src(test::stories_dir());
  int matrices = 0;
  for (const auto& p : plain.tensors()) {
    if (!dtype_is_quantized(p.dtype)) continue;
    const TensorView& c = cal.get(p.name);
    ASSERT_EQ(c.dtype, p.dtype) << p.name;
    const std::vector<float> ms = stats.mean_squares(p.name);
    ASSERT_EQ(static_cast<int64_t>(ms.size()), p.cols) << p.name;
    const SafeTensor* s = src.find(hf_tensor_name(p.name));
    std::vector<float> w(size_t(p.cols)), qp(size_t(p.cols)), qc(size_t(p.cols));
    double err_plain = 0, err_cal = 0;
    for (int64_t r = 0; r < p.rows; ++r) {
      s->read_f32(r * p.cols, p.cols, w.data());
      dequantize_row(p.dtype, p.data + r * p.row_bytes(), p.cols, qp.data());
      dequantize_row(c.dtype, c.data + r * c.row_bytes(), c.cols, qc.data());
      for (size_t i = 0; i < w.size(); ++i) {
        err_plain += ms[i] * double(qp[i] - w[i]) * (qp[i] - w[i]);
        err_cal += ms[i] * double(qc[i] - w[i]) * (qc[i] - w[i]);
      }
    }
    EXPECT_LT(err_cal, err_plain) << p.name << " as " << dtype_name(type);
    std::printf("%-14s %s weighted error %.4g -> %.4g (%+.1f%%)\n", p.name.c_str(), std::string(dtype_name(type)).c_str(), err_plain,
                err_cal, 100 * (err_cal / err_plain - 1));
    ++matrices;
  }
  EXPECT_EQ(matrices, 7 * 5);  // stories260K: 7 projections in each of 5 layers; the tied head stays F16
}

INSTANTIATE_TEST_SUITE_P(QuantizedTypes, CalibratedConversion,
                         ::testing::Values(DType::Q8, DType::Q6, DType::Q5, DType::Q4N, DType::Q4, DType::Q3),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// KL divergence against F16 on the second half of the text, which calibration never saw.
class CalibratedQuality : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    text_ = test::read_text(texts().evaluation);
    PerplexityOptions po;
    po.context = 256;
    po.save_kl_base = (dir_ / "f16.kld").string();
    Model base(test::converted_stories(DType::F16).string(), runtime(256));
    run_perplexity(base, text_, po, {});
  }
  // Mean KLD of `type` without and with calibration.
  static std::pair<double, double> kld(DType type) {
    PerplexityOptions po;
    po.context = 256;
    po.kl_base = (dir_ / "f16.kld").string();
    Model plain(test::converted_stories(type).string(), runtime(256));
    Model cal(calibrated_stories(type).string(), runtime(256));
    const PerplexityResult a = run_perplexity(plain, text_, po, {}), b = run_perplexity(cal, text_, po, {});
    std::printf("%s mean KLD: %.6f +/- %.6f plain, %.6f +/- %.6f calibrated (%+.1f%%); same top-1 %.2f%% / %.2f%%\n",
                std::string(dtype_name(type)).c_str(), a.kld_mean, a.kld_err, b.kld_mean, b.kld_err,
                100 * (b.kld_mean / a.kld_mean - 1), 100 * a.top1_agreement, 100 * b.top1_agreement);
    return {a.kld_mean, b.kld_mean};
  }
  static inline ScratchDir dir_;
  static inline std::string text_;
};

TEST_F(CalibratedQuality, Q8Q6Q5KlDivergenceOnAnotherTextIsLower) {
  for (DType t : {DType::Q8, DType::Q6, DType::Q5}) {
    const auto [plain, cal] = kld(t);
    EXPECT_LT(cal, plain) << dtype_name(t);
  }
}

// Not asserted for q4, q4n and q3: on stories260K calibration does not lower their KLD
// (q4 0.1079 plain, 0.1113 calibrated, +3.2%; q4n -1.2%, q3 +1.8%). The weighted error
// falls for every matrix (above), but at 8 to 16 levels which scale a block gets moves
// this model's KLD by some 5% either way: importance weights drawn at random from
// [0.5, 1.5] gave q4 0.117 to 0.124 against 0.119 plain on another split.

// A conversion that must fail with `what` and the text's path in the message and write nothing.
void expect_calibration_refused(const fs::path& text, const std::string& what) {
  ScratchDir out;
  ConvertOptions opt;
  opt.calibration.text_file = text.string();
  try {
    convert_hf_checkpoint(test::stories_dir().string(), (out / "m.q4").string(), opt);
    ADD_FAILURE() << "calibration on " << text << " succeeded; expected: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(text.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(out.path())) << "output written after a refused calibration";
}

TEST(CalibrationRefused, MissingTextFile) {
  ScratchDir dir;
  expect_calibration_refused(dir / "no-such-text.txt", "cannot open the calibration text");
}

TEST(CalibrationRefused, EmptyText) {
  ScratchDir dir;
  test::write_text(dir / "empty.txt", "");
  expect_calibration_refused(dir / "empty.txt", "the calibration text is empty");
  test::write_text(dir / "blank.txt", " \n\n\t\n");
  expect_calibration_refused(dir / "blank.txt", "the calibration text is empty");
}

// The tool: progress on stderr, the temporary F16 copy gone afterwards (TMPDIR points at
// a scratch folder), on failure too; GGUF input; bad numbers refused.
class CalibrateCli : public ::testing::Test {
 protected:
  test::CommandResult qconvert(const std::string& args) {
    return test::run_command("TMPDIR=" + test::quoted(tmp_.path().string()) + " " +
                             test::quoted((test::bin_dir() / "qconvert").string()) + " " + args);
  }
  ScratchDir dir_, tmp_;
  const std::string text_ = test::quoted(texts().calibration.string());
};

TEST_F(CalibrateCli, ConvertsAndLeavesNoTemporary) {
  const auto r = qconvert(test::quoted(test::stories_dir().string()) + " -o " + test::quoted((dir_ / "m.q4").string()) +
                          " --type q4 --calibrate " + text_ + " --calibrate-chunks 2 --calibrate-ctx 64");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("calibration: running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("window 2/2"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir_ / "m.q4"));
  EXPECT_TRUE(fs::is_empty(tmp_.path()));
}

TEST_F(CalibrateCli, BrokenCheckpointLeavesNoTemporary) {
  // One layer fewer than the checkpoint has: the F16 copy fails after its folder exists.
  const fs::path hf = dir_ / "hf";
  test::copy_stories(hf);
  auto j = nlohmann::json::parse(test::read_text(hf / "config.json"));
  j["num_hidden_layers"] = 4;
  test::write_text(hf / "config.json", j.dump());
  const auto r = qconvert(test::quoted(hf.string()) + " -o " + test::quoted((dir_ / "m.q4").string()) +
                          " --calibrate " + text_);
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("beyond num_hidden_layers"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "m.q4"));
  EXPECT_TRUE(fs::is_empty(tmp_.path()));
}

TEST_F(CalibrateCli, MissingTextIsOneLineNamingIt) {
  const auto r = qconvert(test::quoted(test::stories_dir().string()) + " -o " + test::quoted((dir_ / "m.q4").string()) +
                          " --calibrate " + test::quoted((dir_ / "nope.txt").string()));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find((dir_ / "nope.txt").string() + ": cannot open the calibration text"), std::string::npos)
      << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "m.q4"));
}

// From Q8_0 blocks to q4: the re-quantization warnings once (the F16 copy does not repeat them).
TEST_F(CalibrateCli, GgufInputCalibratesAndLeavesNoTemporary) {
  test::write_bytes(dir_ / "m.gguf", test::stories_gguf([](const std::string&) { return test::kGgmlQ8_0; }));
  const auto r = qconvert(test::quoted((dir_ / "m.gguf").string()) + " -o " + test::quoted((dir_ / "m.q4").string()) +
                          " --type q4 --calibrate " + text_ + " --calibrate-chunks 2 --calibrate-ctx 64");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("window 2/2"), std::string::npos) << r.out;
  // The conversion's two groups (matrices to q4, the embedding to f16); the F16 copy's
  // would be a third.
  EXPECT_NE(r.out.find("re-quantizing 30 tensors Q8_0 -> q4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("re-quantizing 1 tensor Q8_0 -> f16"), std::string::npos) << r.out;
  int warnings = 0;
  for (size_t at = r.out.find("re-quantizing"); at != std::string::npos; at = r.out.find("re-quantizing", at + 1))
    ++warnings;
  EXPECT_EQ(warnings, 2) << r.out;
  EXPECT_TRUE(fs::exists(dir_ / "m.q4"));
  EXPECT_TRUE(fs::is_empty(tmp_.path()));
}

TEST_F(CalibrateCli, BadNumbersAreUsageErrors) {
  const std::string base = test::quoted(test::stories_dir().string()) + " -o " +
                           test::quoted((dir_ / "m.q4").string()) + " --calibrate " + text_;
  EXPECT_EQ(qconvert(base + " --calibrate-chunks 0").exit_code, 2);
  EXPECT_EQ(qconvert(base + " --calibrate-ctx 1").exit_code, 2);
  EXPECT_FALSE(fs::exists(dir_ / "m.q4"));
}

}  // namespace
}  // namespace qrun
