#include "src/runtime/expert_router.h"

#include <algorithm>
#include <cmath>

namespace qrun {

void route_token(const float* logits, int n_experts, int k, bool renormalize, int32_t* chosen, float* weights) {
  // The k largest logits are the k largest probabilities: select first, then take the
  // softmax's values for those k only (its denominator still sums every expert).
  for (int j = 0; j < k; ++j) chosen[j] = -1;
  for (int e = 0; e < n_experts; ++e) {
    int at = k;
    while (at > 0 && (chosen[at - 1] < 0 || logits[e] > logits[chosen[at - 1]])) --at;
    if (at == k) continue;
    std::copy_backward(chosen + at, chosen + k - 1, chosen + k);
    chosen[at] = e;
  }
  const float top = logits[chosen[0]];
  double all = 0, picked = 0;
  for (int e = 0; e < n_experts; ++e) all += std::exp(static_cast<double>(logits[e] - top));
  for (int j = 0; j < k; ++j) {
    weights[j] = static_cast<float>(std::exp(static_cast<double>(logits[chosen[j]] - top)));
    picked += weights[j];
  }
  const double denominator = renormalize ? picked : all;
  for (int j = 0; j < k; ++j) weights[j] = static_cast<float>(weights[j] / denominator);
}

}  // namespace qrun
