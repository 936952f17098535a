// Picks the next token from logits: greedy, or temperature with top-k, top-p, min-p
// and a repetition penalty, from a seeded generator so runs are reproducible.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace qrun {

struct SamplerConfig {
  float temperature = 0.8f;     // 0: greedy
  int top_k = 40;               // 0: off
  float top_p = 0.95f;          // 1: off
  float min_p = 0.05f;          // 0: off
  float repeat_penalty = 1.0f;  // 1: off
  // OpenAI's penalties: logit -= count * frequency_penalty + (count > 0) * presence_penalty
  float frequency_penalty = 0.0f;  // 0: off
  float presence_penalty = 0.0f;   // 0: off
  int repeat_last_n = 64;          // the tokens every penalty counts
  // OpenAI's logit_bias: added to these tokens' logits before anything else (-inf: never).
  std::vector<std::pair<int32_t, float>> logit_bias;
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerConfig& config);
  // history: tokens so far (for the repetition penalty). logits are modified.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history);

 private:
  SamplerConfig cfg_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;
};

int32_t argmax(std::span<const float> logits);

}  // namespace qrun
