// Rotary position embeddings in the rotate-half (NeoX) convention that Hugging Face
// Llama checkpoints use: element i is rotated with element i + head_dim/2.
#pragma once

#include <cstdint>
#include <vector>

#include "qrun/format.h"

namespace qrun {

// Per-pair inverse frequencies with the checkpoint's scaling (linear or llama3) folded in.
std::vector<float> rope_inv_freq(const format::HParams& hp);

// Rotates n_heads vectors of head_dim floats (contiguous) for position pos.
void rope_apply(float* x, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq);

}  // namespace qrun
