// Attention of query heads over a range of cached positions: the KV cache's view of
// simd's attend (tiled, online softmax; scratch is one tile of scores per head, whatever
// the context length).
#pragma once

#include <cstdint>

#include "qrun/kv_cache.h"
#include "simd/kernels.h"

namespace qrun {

// For `heads` query heads that share the KV head whose first element in a cache row is
// kv_col (q and out: heads * head_dim floats): out = sum_t softmax_t(q . K_t * scale) V_t
// for t in [t_begin, t_end) (scale 0: 1 / sqrt(head_dim); softcap as attend's).
// tile: heads * kAttentionTile floats.
// key_ends: per head, its own end (<= t_end) where heads of several prompt tokens share the call.
inline void attend_heads(const float* q, int heads, const KvCache& cache, int layer, int kv_col, int t_begin,
                         int t_end, int head_dim, float* out, float* tile, float scale = 0.0f, float softcap = 0.0f,
                         const float* sinks = nullptr, const int64_t* key_ends = nullptr) {
  const KvType kt = cache.key_type(), vt = cache.value_type();
  AttendArgs a{q, heads,
               KvRows{cache.key(layer, t_begin) + kv_col_offset(kt, kv_col, head_dim), cache.key_bytes(), kt},
               KvRows{cache.value(layer, t_begin) + kv_col_offset(vt, kv_col, head_dim), cache.value_bytes(), vt},
               t_end - t_begin, head_dim, out, tile, scale, softcap, sinks, key_ends};
  attend(a);
}

}  // namespace qrun
