// Attention of one query head over a range of cached positions, in tiles with an
// online softmax (flash-attention style): scratch is one tile of scores, whatever
// the context length.
#pragma once

#include <cstdint>

#include "qrun/kv_cache.h"

namespace qrun {

inline constexpr int kAttentionTile = 64;

// out[head_dim] = sum_t softmax_t(q . K_t / sqrt(head_dim)) V_t for t in [t_begin, t_end).
// kv_col: offset of this head's K/V within a cache row. tile: kAttentionTile floats.
void attend_head(const float* q, const KvCache& cache, int layer, int kv_col, int t_begin, int t_end,
                 int head_dim, float* out, float* tile);

}  // namespace qrun
