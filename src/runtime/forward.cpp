// The transformer forward pass: one batch of tokens through every layer.
#include <algorithm>
#include <cmath>
#include <span>

#include "qrun/error.h"
#include "qrun/model.h"
#include "qrun/model_layout.h"
#include "quant/quantize.h"
#include "simd/kernels.h"
#include "src/runtime/attention.h"
#include "src/runtime/gpu_offload.h"
#include "src/runtime/layer_streamer.h"
#include "src/runtime/layer_weights.h"
#include "src/runtime/model_scratch.h"
#include "src/runtime/projection.h"
#include "src/runtime/rope.h"

namespace qrun {


void Model::forward_batch(const int32_t* tokens, int n, float* logits, bool all_logits, bool step, float* states) {
  const auto& hp = hparams();
  const int dim = static_cast<int>(hp.dim);
  const int hd = static_cast<int>(hp.head_dim), n_heads = static_cast<int>(hp.n_heads);
  const int n_kv = static_cast<int>(hp.n_kv_heads), q_dim = n_heads * hd, kv_dim = n_kv * hd;
  const int pos0 = pos_;
  Scratch& s = *s_;
  const ActivationBuffers act{s.xq, s.xq16, (step ? plan_.q8_step_bits : plan_.q8_prompt_bits) == 16};

  // Token embeddings.
  const Weight& emb = w_->embedding;
  for (int i = 0; i < n; ++i)
    dequantize_row(emb.dtype, emb.data + tokens[i] * emb.row_bytes(), dim, &s.x[size_t(i) * dim]);
  if (const float scale = embedding_scale(hp); scale != 1.0f)
    for (float& v : std::span(s.x).first(size_t(n) * dim)) v *= scale;
  const float residual = residual_scale(hp);

  for (int l = 0; l < static_cast<int>(w_->layers.size()); ++l) {
    if (gpu_ && l == plan_.gpu_first) {
      // The offloaded run: x crosses to the device and back once.
      gpu_->run_layers(s.x.data(), n, pos0);
      l += plan_.gpu_count - 1;
      continue;
    }
    const LayerWeights& w = w_->layers[static_cast<size_t>(l)];
    const int slot = plan_.kv_slot(l);  // this layer's place in the host KV cache
    streamer_->before_layer(l);

    // Attention: norm, q/k/v projections, RoPE, cache, attention, output projection.
    for (int i = 0; i < n; ++i) rmsnorm(&s.xb[size_t(i) * dim], &s.x[size_t(i) * dim], w.attention_norm, dim, hp.norm_eps);
    if (observer_) observer_(l, MatrixInput::AttentionIn, s.xb.data(), n, dim);
    project(pool_, {{w.wq, s.q.data(), q_dim}, {w.wk, s.k.data(), kv_dim}, {w.wv, s.v.data(), kv_dim}}, s.xb.data(),
            n, act);
    const std::vector<float>& rope = rope_table(l);
    const float rope_scale = local_rope(l) ? 1.0f : rope_attn_factor_;
    const bool rotates = layer_uses_rope(hp, l);
    for (int i = 0; i < n; ++i) {
      float* q = &s.q[size_t(i) * q_dim];
      float* k = &s.k[size_t(i) * kv_dim];
      float* v = &s.v[size_t(i) * kv_dim];
      if (w.bq) {
        add_f32(q, w.bq, q_dim);
        add_f32(k, w.bk, kv_dim);
        add_f32(v, w.bv, kv_dim);
      }
      if (w.q_norm) {
        for (int h = 0; h < n_heads; ++h) rmsnorm(q + h * hd, q + h * hd, w.q_norm, hd, hp.norm_eps);
        for (int h = 0; h < n_kv; ++h) rmsnorm(k + h * hd, k + h * hd, w.k_norm, hd, hp.norm_eps);
      }
      if (rotates) {
        rope_apply(q, n_heads, hd, pos0 + i, rope, rope_scale);
        rope_apply(k, n_kv, hd, pos0 + i, rope, rope_scale);
      }
      cache_.store(slot, pos0 + i, k, v);
    }
    attention(l, slot, n, pos0);
    if (observer_) observer_(l, MatrixInput::AttentionOut, s.xb.data(), n, q_dim);
    project(pool_, {{w.wo, s.xb2.data(), dim}}, s.xb.data(), n, act);
    if (w.bo)
      for (int i = 0; i < n; ++i) add_f32(&s.xb2[size_t(i) * dim], w.bo, dim);
    if (w.post_attention_norm)
      for (int i = 0; i < n; ++i)
        rmsnorm(&s.xb2[size_t(i) * dim], &s.xb2[size_t(i) * dim], w.post_attention_norm, dim, hp.norm_eps);
    axpy_f32(s.x.data(), residual, s.xb2.data(), int64_t{n} * dim);

    // Feed-forward: norm, then SwiGLU(gate, up) and the down projection of one FFN or of
    // the experts the router picks.
    for (int i = 0; i < n; ++i) rmsnorm(&s.xb[size_t(i) * dim], &s.x[size_t(i) * dim], w.ffn_norm, dim, hp.norm_eps);
    if (observer_) observer_(l, MatrixInput::FfnIn, s.xb.data(), n, dim);
    if (w.router.data) experts_ffn(l, n, act);
    else dense_ffn(l, n, act);
    if (w.post_ffn_norm)
      for (int i = 0; i < n; ++i)
        rmsnorm(&s.xb2[size_t(i) * dim], &s.xb2[size_t(i) * dim], w.post_ffn_norm, dim, hp.norm_eps);
    axpy_f32(s.x.data(), residual, s.xb2.data(), int64_t{n} * dim);
    streamer_->after_layer(l);
  }
  pos_ += n;
  if (const int ring = plan_.ring_positions()) ring_from_ = std::max(ring_from_, pos_ - ring);
  if (states)
    for (int i = 0; i < n; ++i) rmsnorm(&states[size_t(i) * dim], &s.x[size_t(i) * dim], w_->norm, dim, hp.norm_eps);
  if (!logits) return;

  // Final norm and output head, for the last token or all of them.
  const int first = all_logits ? 0 : n - 1, m = n - first;
  for (int i = 0; i < m; ++i)
    rmsnorm(&s.xb[size_t(i) * dim], &s.x[size_t(first + i) * dim], w_->norm, dim, hp.norm_eps);
  if (observer_) observer_(-1, MatrixInput::Head, s.xb.data(), m, dim);
  const Weight& head = w_->head;
  project(pool_, {{head, logits, head.rows}}, s.xb.data(), m, act);
  if (const float scale = logit_scale(hp); scale != 1.0f)
    for (float& v : std::span(logits, size_t(m) * head.rows)) v /= scale;
  if (hp.final_softcap > 0)
    for (float& v : std::span(logits, size_t(m) * head.rows)) v = hp.final_softcap * std::tanh(v / hp.final_softcap);
}

void Model::dense_ffn(int l, int n, const ActivationBuffers& act) {
  const LayerWeights& w = w_->layers[static_cast<size_t>(l)];
  const int dim = static_cast<int>(hparams().dim), hidden = static_cast<int>(hparams().hidden_dim);
  Scratch& s = *s_;
  project(pool_, {{w.w1, s.hb.data(), hidden}, {w.w3, s.hb2.data(), hidden}}, s.xb.data(), n, act);
  ffn_activation(s.hb.data(), s.hb2.data(), int64_t{n} * hidden);
  if (observer_) observer_(l, MatrixInput::FfnHidden, s.hb.data(), n, hidden);
  project(pool_, {{w.w2, s.xb2.data(), dim}}, s.hb.data(), n, act);
}

void Model::ffn_activation(float* gate, const float* up, int64_t n) const {
  if (hparams().flags & format::kGeluTanh) geglu_tanh(gate, up, n);
  else if (hparams().swiglu_limit > 0.0f) swiglu_clamped(gate, up, n, hparams().swiglu_limit);
  else swiglu(gate, up, n);
}

}  // namespace qrun
