// Perplexity and KL divergence over a text, the way llama.cpp's perplexity tool
// measures them: the tokenized text is cut into windows of `context` tokens (each
// starting with BOS), and the second half of every window is scored, so each scored
// token sees at least context/2 tokens of history.
//
// KL divergence: a run on the reference model (F32/F16) saves the full log-softmax of
// every scored position (f32, see docs/kl_base_format in perplexity.cpp); a run on a
// quantized model reads it back and compares position by position.
#pragma once

#include <functional>
#include <string>

#include "qrun/model.h"

namespace qrun {

struct PerplexityOptions {
  int context = 256;
  int max_chunks = 0;         // > 0: score only the first max_chunks windows (llama.cpp --chunks)
  std::string save_kl_base;   // write the reference log-probabilities here
  std::string kl_base;        // compare against this reference file
};

struct PerplexityResult {
  int chunks = 0;
  int scored_tokens = 0;
  double ppl = 0, ppl_err = 0;      // exp(mean NLL), and its standard error
  bool has_kl = false;
  double kld_mean = 0, kld_err = 0, kld_p99 = 0;
  double top1_agreement = 0;        // fraction of positions with the same argmax
  double ppl_base = 0;              // reference perplexity from the base file
};

// progress(chunk, n_chunks, running perplexity) after every window.
PerplexityResult run_perplexity(Model& model, const std::string& text, const PerplexityOptions& options,
                                const std::function<void(int, int, double)>& progress);

}  // namespace qrun
