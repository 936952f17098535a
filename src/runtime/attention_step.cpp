// One layer's attention over the KV cache for a batch of tokens, split into tasks for the
// thread pool: each call of the kernel reads every cached key and value once for all of
// its query rows, so a task takes as many rows as share them (kMaxAttendHeads at most).
#include <algorithm>
#include <vector>

#include "qrun/model.h"
#include "qrun/model_layout.h"
#include "src/runtime/attention.h"
#include "src/runtime/layer_weights.h"
#include "src/runtime/model_scratch.h"
#include "src/runtime/projection.h"

namespace qrun {

void Model::attention(int l, int slot, int n, int pos0) {
  const auto& hp = hparams();
  const LayerWeights& w = w_->layers[size_t(l)];
  const int hd = static_cast<int>(hp.head_dim), n_heads = static_cast<int>(hp.n_heads);
  const int n_kv = static_cast<int>(hp.n_kv_heads), q_dim = n_heads * hd, group = n_heads / n_kv;
  Scratch& s = *s_;
  const int64_t kv_bytes = int64_t{n} * n_heads * (pos0 + n) * hd * 4;
  const bool sliding = layer_is_sliding(hp, l);
  const int threads = std::min(pool_.size(), useful_threads(kv_bytes));
  auto tile_of = [&](int t) { return &s.tiles[size_t(t) * kMaxAttendHeads * kAttentionTile]; };

  // A prompt's tokens: the heads of a KV group for `tokens` consecutive tokens per call,
  // each row causal up to its own token, so a key is read once for up to 8 rows where a
  // group has fewer heads (Qwen2-MoE's 16 KV heads of 128, one per group, q8, one thread,
  // Zen 4: pp512 272-282 -> 304-309 tok/s). Sliding windows and sinks keep one token per call.
  int tokens = sliding || w.attn_sinks || n == 1 ? 1 : std::max(1, kMaxAttendHeads / group);
  while (tokens > 1 && int64_t{(n + tokens - 1) / tokens} * n_kv < threads) --tokens;
  if (tokens > 1) {
    const int blocks = (n + tokens - 1) / tokens;
    pool_.run([&](int t, int nt) {
      std::vector<float> q(size_t(tokens) * group * hd), out(q.size());
      int64_t ends[kMaxAttendHeads];
      for (int task = t; task < blocks * n_kv; task += nt) {
        const int i0 = task / n_kv * tokens, kvh = task % n_kv, m = std::min(tokens, n - i0);
        for (int j = 0; j < m; ++j)
          for (int h = 0; h < group; ++h) {
            std::copy_n(&s.q[size_t(i0 + j) * q_dim + size_t(kvh * group + h) * hd], hd, &q[size_t(j * group + h) * hd]);
            ends[j * group + h] = pos0 + i0 + j + 1;
          }
        attend_heads(q.data(), m * group, cache_, slot, kvh * hd, 0, pos0 + i0 + m, hd, out.data(), tile_of(t),
                     hp.query_scale, hp.attn_softcap, nullptr, ends);
        for (int j = 0; j < m; ++j)
          std::copy_n(&out[size_t(j * group) * hd], size_t(group) * hd, &s.xb[size_t(i0 + j) * q_dim + size_t(kvh * group) * hd]);
      }
    }, threads);
    return;
  }

  // One token per call: its KV group's heads together, in shares of at most
  // kMaxAttendHeads, and in smaller shares where there would be fewer tasks than threads.
  int shares = (group + kMaxAttendHeads - 1) / kMaxAttendHeads;
  while (shares < group && int64_t{n} * n_kv * shares < threads) ++shares;
  const int share = (group + shares - 1) / shares;
  pool_.run([&](int t, int nt) {
    for (int task = t; task < n * n_kv * shares; task += nt) {
      const int i = task / (n_kv * shares), kvh = task / shares % n_kv, first = kvh * group + task % shares * share;
      const int heads = std::min(share, (kvh + 1) * group - first);
      if (heads <= 0) continue;
      const int t_end = pos0 + i + 1;
      const int t_begin = sliding ? std::max(0, t_end - static_cast<int>(hp.sliding_window)) : 0;
      const size_t at = size_t(i) * q_dim + size_t(first) * hd;
      attend_heads(&s.q[at], heads, cache_, slot, kvh * hd, t_begin, t_end, hd, &s.xb[at], tile_of(t), hp.query_scale,
                   hp.attn_softcap, w.attn_sinks ? w.attn_sinks + first : nullptr);
    }
  }, threads);
}

}  // namespace qrun
