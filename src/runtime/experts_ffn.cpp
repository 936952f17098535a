// The mixture-of-experts FFN (Mixtral, Qwen3-MoE, GraniteMoe, Qwen2-MoE, gpt-oss): the
// router picks k experts per token, and the FFN's output is their SwiGLU outputs weighted
// by the router, plus Qwen2-MoE's shared expert weighted by sigmoid(shared_gate . x).
#include <algorithm>
#include <cmath>
#include <vector>

#include "qrun/model.h"
#include "src/runtime/expert_router.h"
#include "src/runtime/layer_streamer.h"
#include "src/runtime/layer_weights.h"
#include "src/runtime/model_scratch.h"
#include "src/runtime/projection.h"

namespace qrun {

namespace {

// Qwen2-MoE's shared expert weight for one token's normed input x.
float shared_weight(const LayerWeights& w, const float* x, int dim) {
  return 1.0f / (1.0f + std::exp(-dot_f32(w.shared_gate, x, dim)));
}

// gpt-oss's expert biases on m rows of expert e's gate and up outputs (the checkpoint
// interleaves the two), or of its down projection's.
void add_gate_up_bias(const LayerWeights& w, int e, int hidden, int m, float* gate, float* up) {
  if (!w.experts_gate_up_bias) return;
  const float* b = w.experts_gate_up_bias + size_t(e) * 2 * hidden;
  for (int r = 0; r < m; ++r)
    for (int c = 0; c < hidden; ++c) {
      gate[size_t(r) * hidden + c] += b[2 * c];
      up[size_t(r) * hidden + c] += b[2 * c + 1];
    }
}

void add_down_bias(const LayerWeights& w, int e, int dim, int m, float* out) {
  if (!w.experts_down_bias) return;
  for (int r = 0; r < m; ++r) add_f32(out + size_t(r) * dim, w.experts_down_bias + size_t(e) * dim, dim);
}

}  // namespace

void Model::experts_ffn(int l, int n, const ActivationBuffers& act) {
  const auto& hp = hparams();
  const LayerWeights& w = w_->layers[static_cast<size_t>(l)];
  const int dim = static_cast<int>(hp.dim), hidden = static_cast<int>(hp.hidden_dim);
  const int n_experts = static_cast<int>(hp.n_experts), k = static_cast<int>(hp.n_experts_used);
  const int shared = static_cast<int>(hp.shared_hidden_dim);
  Scratch& s = *s_;
  project(pool_, {{w.router, s.router.data(), n_experts}}, s.xb.data(), n, act);
  if (w.router_bias)
    for (int i = 0; i < n; ++i) add_f32(&s.router[size_t(i) * n_experts], w.router_bias, n_experts);
  for (int i = 0; i < n; ++i)
    route_token(&s.router[size_t(i) * n_experts], n_experts, k, hp.flags & format::kNormTopK,
                &s.chosen[size_t(i) * k], &s.chosen_weight[size_t(i) * k]);
  std::fill_n(s.xb2.begin(), size_t(n) * dim, 0.0f);

  if (n == 1) {
    streamer_->fetch_experts(l, std::span(s.chosen.data(), size_t(k)));
    // One token: the k experts' gate and up rows (and the shared expert's, after them) in
    // one parallel section, their down rows in another (each reading its own hidden
    // state), as the dense FFN's two; the shared expert's wider down rows in a third.
    std::vector<Projection> in, out;
    for (int j = 0; j < k; ++j) {
      const int e = s.chosen[size_t(j)];
      in.push_back({w.w1_experts.part(e, n_experts), &s.hb[size_t(j) * hidden], hidden});
      in.push_back({w.w3_experts.part(e, n_experts), &s.hb2[size_t(j) * hidden], hidden});
    }
    float* shared_hb = &s.hb[size_t(k) * hidden];
    if (shared) {
      in.push_back({w.w1_shared, shared_hb, shared});
      in.push_back({w.w3_shared, &s.hb2[size_t(k) * hidden], shared});
    }
    project(pool_, in, s.xb.data(), 1, act);
    for (int j = 0; j < k; ++j)
      add_gate_up_bias(w, s.chosen[size_t(j)], hidden, 1, &s.hb[size_t(j) * hidden], &s.hb2[size_t(j) * hidden]);
    ffn_activation(s.hb.data(), s.hb2.data(), int64_t{k} * hidden + shared);
    if (observer_) observer_(l, MatrixInput::FfnHidden, s.hb.data(), k, hidden);
    for (int j = 0; j < k; ++j)
      out.push_back({w.w2_experts.part(s.chosen[size_t(j)], n_experts),
                     &s.expert_out[size_t(j) * dim], dim, j});
    project(pool_, out, s.hb.data(), 1, act);
    for (int j = 0; j < k; ++j) add_down_bias(w, s.chosen[size_t(j)], dim, 1, &s.expert_out[size_t(j) * dim]);
    if (shared) {
      if (observer_) observer_(l, MatrixInput::SharedHidden, shared_hb, 1, shared);
      project(pool_, {{w.w2_shared, &s.expert_out[size_t(k) * dim], dim}}, shared_hb, 1, act);
    }
    // Summed in expert order, as a batch sums them (axpy fuses the multiply-add, so the
    // order decides the rounding): a step and a batch then round alike.
    std::vector<int> order(size_t(k), 0);
    for (int j = 0; j < k; ++j) order[size_t(j)] = j;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return s.chosen[size_t(a)] < s.chosen[size_t(b)]; });
    for (const int j : order) axpy_f32(s.xb2.data(), s.chosen_weight[size_t(j)], &s.expert_out[size_t(j) * dim], dim);
    if (shared) axpy_f32(s.xb2.data(), shared_weight(w, s.xb.data(), dim), &s.expert_out[size_t(k) * dim], dim);
    return;
  }

  // A batch: each expert once, over the tokens that chose it gathered into rows, so its
  // weights are read once per batch as a dense FFN's are.
  std::vector<int> count(size_t(n_experts) + 1, 0), routed(size_t(n) * k);  // routed: slots i*k+j by expert
  for (int slot = 0; slot < n * k; ++slot) ++count[size_t(s.chosen[size_t(slot)]) + 1];
  for (int e = 0; e < n_experts; ++e) count[size_t(e) + 1] += count[size_t(e)];
  std::vector<int> next(count.begin(), count.end() - 1);
  for (int slot = 0; slot < n * k; ++slot) routed[size_t(next[size_t(s.chosen[size_t(slot)])]++)] = slot;
  for (int e = 0; e < n_experts; ++e) {
    const int first = count[size_t(e)], m = count[size_t(e) + 1] - first;
    if (m == 0) continue;
    const int32_t expert[] = {e};
    streamer_->fetch_experts(l, expert);
    for (int r = 0; r < m; ++r)
      std::copy_n(&s.xb[size_t(routed[size_t(first + r)] / k) * dim], dim, &s.expert_in[size_t(r) * dim]);
    project(pool_, {{w.w1_experts.part(e, n_experts), s.hb.data(), hidden}, {w.w3_experts.part(e, n_experts), s.hb2.data(), hidden}},
            s.expert_in.data(), m, act);
    add_gate_up_bias(w, e, hidden, m, s.hb.data(), s.hb2.data());
    ffn_activation(s.hb.data(), s.hb2.data(), int64_t{m} * hidden);
    if (observer_) observer_(l, MatrixInput::FfnHidden, s.hb.data(), m, hidden);
    project(pool_, {{w.w2_experts.part(e, n_experts), s.expert_out.data(), dim}}, s.hb.data(), m, act);
    add_down_bias(w, e, dim, m, s.expert_out.data());
    for (int r = 0; r < m; ++r) {
      const int slot = routed[size_t(first + r)];
      axpy_f32(&s.xb2[size_t(slot / k) * dim], s.chosen_weight[size_t(slot)], &s.expert_out[size_t(r) * dim], dim);
    }
    streamer_->drop_experts(l, expert);
  }
  if (!shared) return;
  // The shared expert over every token, as a dense FFN, added last as in a step.
  project(pool_, {{w.w1_shared, s.hb.data(), shared}, {w.w3_shared, s.hb2.data(), shared}}, s.xb.data(), n, act);
  ffn_activation(s.hb.data(), s.hb2.data(), int64_t{n} * shared);
  if (observer_) observer_(l, MatrixInput::SharedHidden, s.hb.data(), n, shared);
  project(pool_, {{w.w2_shared, s.expert_out.data(), dim}}, s.hb.data(), n, act);
  for (int i = 0; i < n; ++i)
    axpy_f32(&s.xb2[size_t(i) * dim], shared_weight(w, &s.xb[size_t(i) * dim], dim), &s.expert_out[size_t(i) * dim], dim);
}

}  // namespace qrun
