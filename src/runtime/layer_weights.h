// Pointers into the mapped file for one layer's tensors, resolved once at load.
#pragma once

#include <cstdint>
#include <vector>

#include "qrun/dtype.h"
#include "qrun/lora.h"
#include "qrun/model_file.h"

namespace qrun {

struct Weight {
  DType dtype = DType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  const LowRankUpdate* lora = nullptr;  // run-time adapter: y += B (A x) after W x

  static Weight from(const TensorView& t) { return {t.dtype, t.data, t.rows, t.cols}; }
  int64_t row_bytes() const { return dtype_row_bytes(dtype, cols); }
  // Part `i` of `parts` equal row ranges (one expert of a stacked tensor).
  Weight part(int64_t i, int64_t parts) const {
    const int64_t r = rows / parts;
    return {dtype, data + i * r * row_bytes(), r, cols};
  }
};

struct LayerWeights {
  const float* attention_norm;
  Weight wq, wk, wv, wo;
  const float* bq = nullptr;   // Qwen2 attention biases
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* bo = nullptr;   // output projection bias (attention_bias in Llama's configs, gpt-oss)
  const float* attn_sinks = nullptr;           // per query head (gpt-oss)
  const float* q_norm = nullptr;               // per-head RMSNorm of q and k (Qwen3)
  const float* k_norm = nullptr;
  const float* post_attention_norm = nullptr;  // sandwich norms (Gemma 2)
  const float* ffn_norm;
  Weight w1, w2, w3;           // gate, down, up
  // Mixture of experts (instead of w1..w3): the router's n_experts rows of f32, and every
  // expert's gate, down and up rows stacked in expert order.
  Weight router, w1_experts, w2_experts, w3_experts;
  // gpt-oss: the router's bias [n_experts], each expert's gate and up biases interleaved
  // [n_experts][2 * hidden_dim] and its down bias [n_experts][dim].
  const float* router_bias = nullptr;
  const float* experts_gate_up_bias = nullptr;
  const float* experts_down_bias = nullptr;
  // Qwen2-MoE's shared expert (gate, down, up) and its gate's dim weights; none elsewhere.
  Weight w1_shared, w2_shared, w3_shared;
  const float* shared_gate = nullptr;
  const float* post_ffn_norm = nullptr;
};

struct ModelWeights {
  Weight embedding;
  std::vector<LayerWeights> layers;
  const float* norm;
  Weight head;                 // output, or the embedding when tied
};

}  // namespace qrun
