// The generation loop: prompt in batches, then one token at a time until EOS or the
// token budget, with the timings llama.cpp users expect.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "qrun/model.h"
#include "qrun/sampler.h"

namespace qrun {

struct GenerateOptions {
  int n_predict = 128;      // < 0: until EOS or the context is full
  bool ignore_eos = false;
};

struct GenerationStats {
  int prompt_tokens = 0;
  double prompt_ms = 0;
  int generated_tokens = 0;  // tokens sampled
  int eval_tokens = 0;       // of those, tokens run through the model
  double eval_ms = 0;
};

// on_token is called with each sampled token; returning false stops generation.
GenerationStats generate(Model& model, std::span<const int32_t> prompt, Sampler& sampler,
                         const GenerateOptions& options, const std::function<bool(int32_t)>& on_token);

}  // namespace qrun
