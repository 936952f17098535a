#include "src/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "simd/kernels.h"

namespace qrun {

void attend_head(const float* q, const KvCache& cache, int layer, int kv_col, int t_begin, int t_end,
                 int head_dim, float* out, float* tile) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  float running_max = -std::numeric_limits<float>::infinity();
  float running_sum = 0.0f;
  std::fill(out, out + head_dim, 0.0f);
  for (int t0 = t_begin; t0 < t_end; t0 += kAttentionTile) {
    const int n = std::min(kAttentionTile, t_end - t0);
    float tile_max = running_max;
    for (int i = 0; i < n; ++i) {
      tile[i] = dot_f32_f16(q, cache.key(layer, t0 + i) + kv_col, head_dim) * scale;
      tile_max = std::max(tile_max, tile[i]);
    }
    // Rescale what was accumulated under the old maximum.
    const float correction = std::exp(running_max - tile_max);
    if (correction != 1.0f) {
      scale_f32(out, correction, head_dim);
      running_sum *= correction;
    }
    running_max = tile_max;
    for (int i = 0; i < n; ++i) {
      const float p = std::exp(tile[i] - tile_max);
      running_sum += p;
      axpy_f16(out, p, cache.value(layer, t0 + i) + kv_col, head_dim);
    }
  }
  if (running_sum > 0.0f) scale_f32(out, 1.0f / running_sum, head_dim);
}

}  // namespace qrun
