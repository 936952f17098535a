// Activation buffers of one forward batch, allocated once at load. Their sizes come
// from one function so the memory estimate predicts exactly what is allocated.
#pragma once

#include <algorithm>
#include <vector>

#include "qrun/format.h"
#include "qrun/model.h"
#include "simd/kernels.h"
#include "src/runtime/attention.h"

namespace qrun {

struct ScratchSizes {
  size_t x, xb, xb2, q, k, v, hb, hb2, xq, xq16, tiles;   // elements

  // wide_rows: rows of 16-bit activations (RunPlan::q8_wide_rows).
  ScratchSizes(const format::HParams& hp, int batch, int threads, int wide_rows) {
    const size_t b = static_cast<size_t>(batch);
    const size_t q_dim = size_t{hp.n_heads} * hp.head_dim, kv_dim = size_t{hp.n_kv_heads} * hp.head_dim;
    const size_t widest = std::max({size_t{hp.dim}, size_t{hp.hidden_dim}, q_dim});
    x = b * hp.dim;
    xb = b * std::max(size_t{hp.dim}, q_dim);
    xb2 = b * hp.dim;
    q = b * q_dim;
    k = v = b * kv_dim;
    hb = hb2 = b * hp.hidden_dim;
    xq = b * static_cast<size_t>(q8a_blocks(static_cast<int64_t>(widest)));
    xq16 = static_cast<size_t>(wide_rows) * static_cast<size_t>(q8a_blocks(static_cast<int64_t>(widest)));
    tiles = static_cast<size_t>(threads) * kAttentionTile;
  }
  uint64_t bytes() const {
    return (x + xb + xb2 + q + k + v + hb + hb2 + tiles) * sizeof(float) + xq * sizeof(BlockQ8A) + xq16 * sizeof(BlockQ16A);
  }
};

struct Model::Scratch {
  explicit Scratch(const ScratchSizes& s)
      : x(s.x), xb(s.xb), xb2(s.xb2), q(s.q), k(s.k), v(s.v), hb(s.hb), hb2(s.hb2), xq(s.xq), xq16(s.xq16), tiles(s.tiles) {}
  std::vector<float> x;         // residual stream, batch x dim
  std::vector<float> xb, xb2;   // normed input / projection output
  std::vector<float> q, k, v;
  std::vector<float> hb, hb2;   // FFN gate and up
  std::vector<BlockQ8A> xq;     // int8 activations of the current matmul input
  std::vector<BlockQ16A> xq16;  // its 16-bit activations, for Q8 matrices (RunPlan::q8_step_bits)
  std::vector<float> tiles;     // attention score tile per thread
};

}  // namespace qrun
