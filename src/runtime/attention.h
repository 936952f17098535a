// Attention of one query head over a range of cached positions: the KV cache's view of
// simd's attend_f16 (tiled, online softmax; scratch is one tile of scores, whatever
// the context length).
#pragma once

#include <cstdint>

#include "qrun/kv_cache.h"
#include "simd/kernels.h"

namespace qrun {

// out[head_dim] = sum_t softmax_t(q . K_t * scale) V_t for t in [t_begin, t_end) (scale
// 0: 1 / sqrt(head_dim); softcap as attend_f16's). kv_col: offset of this head's K/V
// within a cache row. tile: kAttentionTile floats.
inline void attend_head(const float* q, const KvCache& cache, int layer, int kv_col, int t_begin, int t_end,
                        int head_dim, float* out, float* tile, float scale = 0.0f, float softcap = 0.0f) {
  attend_f16(q, cache.key(layer, t_begin) + kv_col, cache.value(layer, t_begin) + kv_col, cache.kv_dim(),
             t_end - t_begin, head_dim, out, tile, scale, softcap);
}

}  // namespace qrun
