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
  size_t router = 0, chosen = 0, expert_in = 0, expert_out = 0;  // mixture of experts

  // wide_rows: rows of 16-bit activations (RunPlan::q8_wide_rows).
  ScratchSizes(const format::HParams& hp, int batch, int threads, int wide_rows) {
    const size_t b = static_cast<size_t>(batch);
    const size_t q_dim = size_t{hp.n_heads} * hp.head_dim, kv_dim = size_t{hp.n_kv_heads} * hp.head_dim;
    const size_t widest = std::max({size_t{hp.dim}, size_t{hp.hidden_dim}, q_dim, size_t{hp.shared_hidden_dim}});
    // One token's k experts each take a row of the FFN buffers and activations.
    const size_t rows = std::max(b, size_t{hp.n_experts_used});
    x = b * hp.dim;
    xb = b * std::max(size_t{hp.dim}, q_dim);
    xb2 = b * hp.dim;
    q = b * q_dim;
    k = v = b * kv_dim;
    // A shared expert's hidden state follows the k experts' in a step, or fills them in a batch.
    const size_t shared = hp.shared_hidden_dim;
    hb = hb2 = std::max({rows * hp.hidden_dim, size_t{hp.n_experts_used} * hp.hidden_dim + shared, b * shared});
    xq = rows * static_cast<size_t>(q8a_blocks(static_cast<int64_t>(widest)));
    xq16 = (wide_rows ? std::max(static_cast<size_t>(wide_rows), rows) : 0) *
           static_cast<size_t>(q8a_blocks(static_cast<int64_t>(widest)));
    tiles = static_cast<size_t>(threads) * kMaxAttendHeads * kAttentionTile;
    if (hp.n_experts) {
      router = b * hp.n_experts;
      chosen = b * hp.n_experts_used;
      expert_in = b * hp.dim;
      expert_out = std::max(rows, size_t{hp.n_experts_used} + (shared ? 1 : 0)) * hp.dim;
    }
  }
  uint64_t bytes() const {
    return (x + xb + xb2 + q + k + v + hb + hb2 + tiles + router + expert_in + expert_out) * sizeof(float) +
           xq * sizeof(BlockQ8A) + xq16 * sizeof(BlockQ16A) + chosen * (sizeof(int32_t) + sizeof(float));
  }
};

struct Model::Scratch {
  explicit Scratch(const ScratchSizes& s)
      : x(s.x), xb(s.xb), xb2(s.xb2), q(s.q), k(s.k), v(s.v), hb(s.hb), hb2(s.hb2), xq(s.xq), xq16(s.xq16), tiles(s.tiles),
        router(s.router), chosen(s.chosen), chosen_weight(s.chosen), expert_in(s.expert_in), expert_out(s.expert_out) {}
  std::vector<float> x;         // residual stream, batch x dim
  std::vector<float> xb, xb2;   // normed input / projection output
  std::vector<float> q, k, v;
  std::vector<float> hb, hb2;   // FFN gate and up
  std::vector<BlockQ8A> xq;     // int8 activations of the current matmul input
  std::vector<BlockQ16A> xq16;  // its 16-bit activations, for Q8 matrices (RunPlan::q8_step_bits)
  std::vector<float> tiles;     // attention score tiles per thread, one per head of a call
  std::vector<float> router;         // router logits, batch x n_experts
  std::vector<int32_t> chosen;       // each token's k experts
  std::vector<float> chosen_weight;  // and their weights
  std::vector<float> expert_in;      // an expert's tokens gathered, batch x dim
  std::vector<float> expert_out;     // its down projection's output
};

}  // namespace qrun
