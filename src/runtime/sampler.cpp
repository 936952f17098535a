#include "qrun/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace qrun {

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

Sampler::Sampler(const SamplerConfig& config) : cfg_(config), rng_(config.seed) {}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
  for (const auto [id, bias] : cfg_.logit_bias)
    if (id >= 0 && static_cast<size_t>(id) < logits.size()) logits[static_cast<size_t>(id)] += bias;
  const bool penalties =
      cfg_.repeat_penalty != 1.0f || cfg_.frequency_penalty != 0.0f || cfg_.presence_penalty != 0.0f;
  if (penalties && cfg_.repeat_last_n > 0) {
    // Over the last repeat_last_n tokens, as llama.cpp applies them: the CTRL-style
    // penalty once per distinct token, then OpenAI's frequency and presence penalties.
    const size_t from = history.size() > static_cast<size_t>(cfg_.repeat_last_n)
                            ? history.size() - static_cast<size_t>(cfg_.repeat_last_n)
                            : 0;
    std::unordered_map<int32_t, int> counts;
    for (size_t i = from; i < history.size(); ++i) ++counts[history[i]];
    for (const auto [id, count] : counts) {
      if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
      float& l = logits[static_cast<size_t>(id)];
      l = l > 0 ? l / cfg_.repeat_penalty : l * cfg_.repeat_penalty;
      l -= static_cast<float>(count) * cfg_.frequency_penalty + cfg_.presence_penalty;
    }
  }
  if (cfg_.temperature <= 0.0f) return argmax(logits);

  candidates_.clear();
  for (size_t i = 0; i < logits.size(); ++i) candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first; };
  size_t keep = candidates_.size();
  if (cfg_.top_k > 0 && static_cast<size_t>(cfg_.top_k) < keep) {
    keep = static_cast<size_t>(cfg_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<ptrdiff_t>(keep), candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  candidates_.resize(keep);

  // Softmax at the temperature, over the kept candidates (sorted, largest first).
  const float max_logit = candidates_.front().first;
  double sum = 0;
  for (auto& c : candidates_) {
    c.first = std::exp((c.first - max_logit) / cfg_.temperature);
    sum += c.first;
  }
  for (auto& c : candidates_) c.first = static_cast<float>(c.first / sum);

  if (cfg_.min_p > 0.0f) {
    const float floor = cfg_.min_p * candidates_.front().first;
    size_t n = 1;
    while (n < candidates_.size() && candidates_[n].first >= floor) ++n;
    candidates_.resize(n);
  }
  if (cfg_.top_p < 1.0f) {
    double cum = 0;
    size_t n = 0;
    while (n < candidates_.size()) {
      cum += candidates_[n++].first;
      if (cum >= cfg_.top_p) break;
    }
    candidates_.resize(n);
  }
  double total = 0;
  for (const auto& c : candidates_) total += c.first;
  std::uniform_real_distribution<double> uniform(0.0, total);
  double r = uniform(rng_);
  for (const auto& c : candidates_) {
    r -= c.first;
    if (r <= 0) return c.second;
  }
  return candidates_.back().second;
}

}  // namespace qrun
