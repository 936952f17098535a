// qconvert --calibrate: importance-weighted quantization (llama.cpp's imatrix idea).
// Row r of a projection computes y_r = sum_c W_rc x_c, so quantizing W_rc to W_rc + e_c
// moves y_r by sum_c e_c x_c, whose mean square over tokens is about sum_c e_c^2 E[x_c^2]
// when the columns' inputs are uncorrelated. A column that meets large inputs thus costs
// more per unit of weight error: we run the model in F16 on a text, collect E[x_c^2] of
// every projection input, and the scale search (quant/scale_search.h) minimises
// sum_c E[x_c^2] e_c^2 instead of sum_c e_c^2.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "convert/lora_adapter.h"
#include "convert/model_writer.h"
#include "qrun/model.h"

namespace qrun {

struct CalibrationOptions {
  std::string text_file;  // empty: no calibration
  int chunks = 16;        // at most this many windows
  int context = 512;      // tokens per window, capped at the model's trained context
  std::function<void(const WriteProgress&)> convert_progress;  // the temporary F16 copy
  std::function<void(int window, int windows)> progress;        // after each window
};

// Per projection input, the sum over tokens of x_c^2 and the number of tokens.
class InputStats {
 public:
  void add(int layer, MatrixInput which, const float* x, int n_tokens, int64_t cols);
  bool empty() const { return sums_.empty(); }
  // The mean over tokens of x_c^2 of the input the named tensor reads ("layers.3.wq",
  // "output"); empty when none was collected (norms, embeddings, no calibration).
  std::vector<float> mean_squares(const std::string& tensor) const;
  // How many tokens the named tensor's input was seen for.
  int64_t tokens(const std::string& tensor) const;

 private:
  struct Sums {
    std::vector<double> squares;
    int64_t tokens = 0;
  };
  const Sums* find(const std::string& tensor) const;
  std::map<std::pair<int, MatrixInput>, Sums> sums_;
};

// The quantizer's column weights from mean squares: normalised to mean 1 (the scale
// search only compares sums, but keeps them far from float's limits), plus a floor so a
// column no token reached still counts and an all-silent block keeps its plain error.
std::vector<float> importance_from_mean_squares(std::span<const float> mean_squares);

// The named tensor's column weights for the quantizer (empty without calibration);
// an error naming `source` when calibration saw another width.
std::vector<float> column_importance(const InputStats& stats, const std::string& tensor, int64_t cols,
                                     const std::string& source);

// Runs `model` over windows of `tokens` (each starting at BOS, like perplexity) and
// collects its projection inputs' statistics.
InputStats collect_input_stats(Model& model, std::span<const int32_t> tokens, const CalibrationOptions& options);

// The whole step: reads options.text_file (an error naming it when unreadable or empty),
// has write_f16 convert the source (a Hugging Face folder, a GGUF file) to a temporary
// F16 file at the path it is given, runs that on the text and removes the temporary, on
// error too.
InputStats calibrate_on_f16_copy(const CalibrationOptions& options, int threads,
                                 const std::function<void(const std::string& f16_path)>& write_f16);
// The checkpoint with `lora` merged, as the conversion will write it.
InputStats calibrate_hf_checkpoint(const std::string& hf_dir, const CalibrationOptions& options, int threads,
                                   const std::vector<LoraOption>& lora = {});

}  // namespace qrun
