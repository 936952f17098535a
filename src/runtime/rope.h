// Rotary position embeddings in the rotate-half (NeoX) convention that Hugging Face
// Llama checkpoints use: element i is rotated with element i + head_dim/2.
#pragma once

#include <cstdint>
#include <vector>

#include "qrun/format.h"

namespace qrun {

// Per-pair inverse frequencies, one per pair of rotated dims (rotary_dim / 2), with the
// checkpoint's scaling (linear, llama3, yarn) folded in. LongRoPE divides each frequency
// by its factor: pass the short or the long list (rope_factors_short/_long).
std::vector<float> rope_inv_freq(const format::HParams& hp, const float* longrope_factors = nullptr);

// The sliding layers' frequencies where the model sets rope_local_theta (Gemma 3: base
// 10,000, no scaling, while global layers take rope_theta and the scaling); else empty.
std::vector<float> rope_local_inv_freq(const format::HParams& hp);

// The scale YaRN and LongRoPE give RoPE's cos and sin (1 otherwise).
float rope_attn_factor(const format::HParams& hp);

// Rotates n_heads vectors of head_dim floats (contiguous) for position pos: element i is
// turned with element i + half for i < half = inv_freq.size() (the dims past 2 * half
// are left alone: partial rotary), cos and sin scaled by attn_factor.
void rope_apply(float* x, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq,
                float attn_factor = 1.0f);

}  // namespace qrun
