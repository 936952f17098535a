// Compares two caches' keys of one layer after a context shift, in f16 steps.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "qrun/kv_cache.h"

namespace qrun::test {

// The largest difference between the keys of `layer` at positions [0, n) of two caches,
// in f16 steps (2^-10) of the length of the RoPE pair (i, i + head_dim/2) the element
// belongs to. Rounding to f16 before and after a turn moves an element by a few steps;
// an unrotated or wrongly rotated key is off by about the pair's length, ~1000 steps.
inline float max_key_error_in_f16_steps(const KvCache& got_cache, const KvCache& want_cache, int layer, int n,
                                        int head_dim) {
  const int kv_dim = got_cache.kv_dim(), half = head_dim / 2;
  std::vector<float> got(static_cast<size_t>(kv_dim)), want(got.size());
  float worst = 0;
  for (int p = 0; p < n; ++p) {
    got_cache.decode_key(got_cache.key(layer, p), got.data());
    want_cache.decode_key(want_cache.key(layer, p), want.data());
    for (int i = 0; i < kv_dim; ++i) {
      const int partner = (i % (2 * half)) < half ? i + half : i - half;
      const float len = std::hypot(want[size_t(i)], want[size_t(partner)]);
      worst = std::max(worst, std::abs(got[size_t(i)] - want[size_t(i)]) / (len * 0x1p-10f + 1e-6f));
    }
  }
  return worst;
}

}  // namespace qrun::test
