// The router of a mixture-of-experts layer: which experts a token goes to, and with
// what weight (Mixtral's and Qwen3-MoE's: softmax over all experts, the k largest,
// optionally renormalized to sum 1).
#pragma once

#include <cstdint>

namespace qrun {

// logits: n_experts router outputs of one token. Writes the k chosen experts (largest
// probability first; ties to the lower index) and their weights.
void route_token(const float* logits, int n_experts, int k, bool renormalize, int32_t* chosen, float* weights);

}  // namespace qrun
