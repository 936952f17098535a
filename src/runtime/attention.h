// Attention of one query head over a range of cached positions: the KV cache's view of
// simd's attend (tiled, online softmax; scratch is one tile of scores, whatever the
// context length).
#pragma once

#include <cstdint>

#include "qrun/kv_cache.h"
#include "simd/kernels.h"

namespace qrun {

// out[head_dim] = sum_t softmax_t(q . K_t * scale) V_t for t in [t_begin, t_end) (scale
// 0: 1 / sqrt(head_dim); softcap as attend's). kv_col: this head's first element within
// a cache row. tile: kAttentionTile floats.
inline void attend_head(const float* q, const KvCache& cache, int layer, int kv_col, int t_begin, int t_end,
                        int head_dim, float* out, float* tile, float scale = 0.0f, float softcap = 0.0f) {
  const KvType kt = cache.key_type(), vt = cache.value_type();
  const KvRows k{cache.key(layer, t_begin) + kv_col_offset(kt, kv_col, head_dim), cache.key_bytes(), kt};
  const KvRows v{cache.value(layer, t_begin) + kv_col_offset(vt, kv_col, head_dim), cache.value_bytes(), vt};
  attend(q, k, v, t_end - t_begin, head_dim, out, tile, scale, softcap);
}

}  // namespace qrun
