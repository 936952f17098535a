#include "qrun/model.h"

#include <algorithm>

#include "qrun/error.h"
#include "qrun/memory_estimate.h"
#include "qrun/model_layout.h"
#include "simd/kernels.h"
#include "src/format/layer_tensor_name.h"
#include "src/runtime/layer_weights.h"
#include "src/runtime/model_scratch.h"
#include "src/runtime/gpu_offload.h"
#include "src/runtime/kernel_choice.h"
#include "src/runtime/layer_streamer.h"
#include "src/runtime/rope.h"

namespace qrun {

namespace {

const float* f32_data(const TensorView& t) { return reinterpret_cast<const float*>(t.data); }

}  // namespace

int resolved_context(const format::HParams& hp, int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::min<uint32_t>(hp.max_seq_len, 4096));
}

Model::Model(const std::string& path, const RuntimeOptions& options)
    : file_(path, options.load_mode),
      tokenizer_(deserialize_tokenizer(file_)),
      plan_(plan_run(file_, options)),
      pool_(plan_.threads),
      cache_(plan_.kv_ring, plan_.context, static_cast<int>(file_.hparams().n_kv_heads * file_.hparams().head_dim),
             static_cast<int>(file_.hparams().head_dim), plan_.kv_key_type, plan_.kv_value_type),
      batch_(plan_.batch),
      kernel_choice_(apply_kernel_choice(options.prefetch, options.blas) +
                     (plan_.q8_step_bits ? ", " + plan_.describe_q8_activations() : "")) {
  const auto& hp = file_.hparams();
  tokens_.resize(static_cast<size_t>(cache_.capacity()));
  if (tokenizer_.vocab_size() > static_cast<int32_t>(hp.vocab_size))
    throw Error(path, static_cast<int64_t>(file_.tokenizer_offset()),
                "tokenizer has " + std::to_string(tokenizer_.vocab_size()) + " tokens but the model only " +
                    std::to_string(hp.vocab_size));
  if (options.verify_checksums) file_.verify_checksums();
  w_ = std::make_unique<ModelWeights>();
  w_->embedding = Weight::from(file_.get("tok_embeddings"));
  w_->norm = f32_data(file_.get("norm"));
  w_->head = Weight::from(file_.get(hp.tied_embeddings ? "tok_embeddings" : "output"));
  for (int l = 0; l < static_cast<int>(hp.n_layers); ++l) {
    auto get = [&](const char* what) -> const TensorView& { return file_.get(layer_tensor_name(l, what)); };
    LayerWeights w;
    w.attention_norm = f32_data(get("attention_norm"));
    w.wq = Weight::from(get("wq"));
    w.wk = Weight::from(get("wk"));
    w.wv = Weight::from(get("wv"));
    w.wo = Weight::from(get("wo"));
    if (hp.attn_bias) {
      w.bq = f32_data(get("bq"));
      w.bk = f32_data(get("bk"));
      w.bv = f32_data(get("bv"));
    }
    if (hp.flags & format::kOutputBias) w.bo = f32_data(get("bo"));
    if (hp.flags & format::kAttnSinks) w.attn_sinks = f32_data(get("attn_sinks"));
    if (hp.flags & format::kQkNorm) {
      w.q_norm = f32_data(get("q_norm"));
      w.k_norm = f32_data(get("k_norm"));
    }
    if (hp.flags & format::kSandwichNorms) {
      w.post_attention_norm = f32_data(get("post_attention_norm"));
      w.post_ffn_norm = f32_data(get("post_ffn_norm"));
    }
    w.ffn_norm = f32_data(get("ffn_norm"));
    if (hp.n_experts) {
      w.router = Weight::from(get("router"));
      w.w1_experts = Weight::from(get("w1_experts"));
      w.w2_experts = Weight::from(get("w2_experts"));
      w.w3_experts = Weight::from(get("w3_experts"));
      if (hp.flags & format::kExpertBias) {
        w.router_bias = f32_data(get("router_bias"));
        w.experts_gate_up_bias = f32_data(get("experts_gate_up_bias"));
        w.experts_down_bias = f32_data(get("experts_down_bias"));
      }
      if (hp.shared_hidden_dim) {
        w.shared_gate = f32_data(get("shared_gate"));
        w.w1_shared = Weight::from(get("w1_shared"));
        w.w2_shared = Weight::from(get("w2_shared"));
        w.w3_shared = Weight::from(get("w3_shared"));
      }
    } else {
      w.w1 = Weight::from(get("w1"));
      w.w2 = Weight::from(get("w2"));
      w.w3 = Weight::from(get("w3"));
    }
    w_->layers.push_back(w);
  }
  if (options.lora && !options.lora->empty()) attach_lora(options.lora);
  // LongRoPE: the long factors once the context is longer than the model's original one
  // (llama.cpp's choice: fixed per run, where transformers switches by sequence length).
  const float* longrope = nullptr;
  if (hp.rope_scaling == static_cast<uint32_t>(format::RopeScaling::LongRope))
    longrope = f32_data(file_.get(context_length() > static_cast<int>(hp.rope_original_max_pos) ? "rope_factors_long"
                                                                                                 : "rope_factors_short"));
  rope_inv_freq_ = rope_inv_freq(hp, longrope);
  rope_local_inv_freq_ = rope_local_inv_freq(hp);
  rope_attn_factor_ = rope_attn_factor(hp);
  s_ = std::make_unique<Scratch>(ScratchSizes(hp, batch_, pool_.size(), plan_.q8_wide_rows()));
  streamer_ = std::make_unique<LayerStreamer>(file_, plan_.layers, options.load_mode == LoadMode::MmapLocked);
  if (plan_.gpu_count > 0) {
    if (hp.flags != 0 || hp.n_experts != 0 || hp.rotary_dim != 0 || hp.rope_attn_factor != 0 || hp.query_scale != 0 ||
        hp.residual_scale != 0 || hp.rope_scaling > 2 || hp.sliding_period != 0 || hp.rope_local_theta != 0 ||
        hp.nope_period != 0)
      throw Error(path, -1, std::string("GPU offload runs the Llama-family recipe only; ") + arch_name(hp.arch) +
                                " needs steps (q/k norms, sandwich norms, GELU, soft-capping, experts, Granite's "
                                "multipliers, biases, attention sinks or this RoPE) it lacks: run without -ngl");
    gpu_ = GpuOffload::create(file_, *w_, GpuLayerRange{plan_.gpu_first, plan_.gpu_count}, context_length(), batch_);
    // The offloaded layers' weights now live on the device: give back their host pages
    // (clean file pages; other processes' mappings keep theirs).
    if (options.load_mode == LoadMode::Mmap)
      for (int l = plan_.gpu_first; l < plan_.gpu_first + plan_.gpu_count; ++l)
        file_.mapping().release(file_.layers()[size_t(l)].offset, file_.layers()[size_t(l)].size);
  }
}

void Model::attach_lora(std::shared_ptr<const LoraUpdates> lora) {
  if (plan_.gpu_count > 0)
    throw Error(file_.path(), -1, "--lora: the GPU layers do not apply adapters; run without -ngl, or merge the "
                                  "adapter with qconvert --lora");
  lora_ = std::move(lora);
  for (const auto& [name, update] : *lora_) {
    Weight* w = nullptr;
    if (name == "output" && !hparams().tied_embeddings) w = &w_->head;
    int layer = -1;
    std::string role;
    if (split_layer_name(name, "layers.", &layer, &role) && layer >= 0 && layer < static_cast<int>(w_->layers.size())) {
      LayerWeights& l = w_->layers[size_t(layer)];
      for (auto [r, field] : {std::pair{"wq", &l.wq}, {"wk", &l.wk}, {"wv", &l.wv}, {"wo", &l.wo}, {"w1", &l.w1},
                              {"w2", &l.w2}, {"w3", &l.w3}, {"w1_shared", &l.w1_shared}, {"w2_shared", &l.w2_shared},
                              {"w3_shared", &l.w3_shared}})
        if (role == r && field->data) w = field;
    }
    if (!w) throw Error(file_.path(), -1, "--lora: no projection '" + name + "' to adapt at run time");
    if (w->rows != update.rows || w->cols != update.cols || update.rank < 1 ||
        update.a.size() != size_t(update.rank * update.cols) || update.b.size() != size_t(update.rows * update.rank))
      throw Error(file_.path(), -1, "--lora: the update of '" + name + "' does not fit its " +
                                        std::to_string(w->rows) + " x " + std::to_string(w->cols) + " matrix");
    w->lora = &update;
  }
}

bool Model::local_rope(int layer) const {
  return !rope_local_inv_freq_.empty() && layer_is_sliding(hparams(), layer);
}

const std::vector<float>& Model::rope_table(int layer) const {
  return local_rope(layer) ? rope_local_inv_freq_ : rope_inv_freq_;
}

std::string Model::gpu_device() const { return gpu_ ? gpu_->device_name() : std::string(); }

uint64_t Model::scratch_bytes() const { return plan_.scratch_bytes; }

Model::~Model() = default;

void Model::forward(std::span<const int32_t> tokens, float* logits, bool all_logits) {
  forward_tokens(tokens, logits, all_logits, false);
}

void Model::step(int32_t token, float* logits) { forward_tokens(std::span(&token, 1), logits, false, true); }

void Model::steps(std::span<const int32_t> tokens, float* logits) { forward_tokens(tokens, logits, true, true); }

void Model::forward_hidden(std::span<const int32_t> tokens, float* hidden) {
  forward_tokens(tokens, nullptr, false, false, hidden);
}

void Model::forward_tokens(std::span<const int32_t> tokens, float* logits, bool all_logits, bool step, float* states) {
  const int n = static_cast<int>(tokens.size());
  if (n == 0) return;
  if (pos_ + n > context_length())
    throw Error(file_.path(), -1, "context overflow: " + std::to_string(pos_ + n) + " tokens exceed the context of " +
                                      std::to_string(context_length()) + " (raise -c)");
  const int32_t vocab = static_cast<int32_t>(file_.hparams().vocab_size);
  for (int32_t id : tokens)
    if (id < 0 || id >= vocab) throw Error("token id " + std::to_string(id) + " outside the vocabulary");
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + pos_);
  for (int done = 0; done < n; done += batch_) {
    const int b = std::min(batch_, n - done);
    const bool last = done + b == n;
    float* out = all_logits ? logits + static_cast<int64_t>(done) * vocab : (last ? logits : nullptr);
    float* h = states ? states + static_cast<int64_t>(done) * file_.hparams().dim : nullptr;
    forward_batch(tokens.data() + done, b, out, all_logits, step, h);
  }
}

void Model::truncate(int n) {
  if (n < 0 || n > pos_)
    throw Error("truncate: " + std::to_string(n) + " tokens asked, " + std::to_string(pos_) + " cached");
  pos_ = n;
  // The next query reads the window before n: a ring that no longer holds it starts over.
  if (plan_.ring_positions() && ring_from_ > std::max(0, n - static_cast<int>(hparams().sliding_window)))
    pos_ = ring_from_ = 0;
}

void Model::shift_context(int keep, int count) {
  if (keep < 0 || count <= 0 || keep + count > pos_)
    throw Error("context shift: cannot drop " + std::to_string(count) + " tokens after " + std::to_string(keep) +
                " of " + std::to_string(pos_));
  const int moved = pos_ - keep - count, new_pos = pos_ - count;
  std::copy_n(tokens_.begin() + keep + count, moved, tokens_.begin() + keep);
  // The sliding layers' rings must give the new window: its moved positions are the last
  // ones written, but a kept one may be long gone from the ring.
  const int window_from = std::max(0, new_pos - static_cast<int>(hparams().sliding_window));
  if (gpu_ || (plan_.ring_positions() && window_from < keep && window_from < ring_from_)) {
    // Offloaded layers keep their cache on the device, a ring only recent positions:
    // recompute every layer from the kept tokens.
    const std::vector<int32_t> kept(tokens_.begin(), tokens_.begin() + new_pos);
    pos_ = ring_from_ = 0;
    forward(kept, nullptr);
    return;
  }
  const int kv_dim = cache_.kv_dim(), slots = static_cast<int>(hparams().n_layers);  // no GPU here: slot = layer
  pool_.parallel_for(int64_t{slots} * moved, [&](int64_t i0, int64_t i1) {
    std::vector<float> k(static_cast<size_t>(kv_dim));
    for (int64_t i = i0; i < i1; ++i) {
      const int l = static_cast<int>(i / moved), to = keep + static_cast<int>(i % moved), from = to + count;
      if (cache_.ring(l)) continue;
      turn_key_back(l, from, count, k.data(), cache_.key(l, to));
      std::copy_n(cache_.value(l, from), cache_.value_bytes(), cache_.value(l, to));
    }
  }, 1);
  if (plan_.ring_positions()) shift_rings(keep, count, window_from, new_pos);
  pos_ = new_pos;
}

void Model::turn_key_back(int layer, int pos, int count, float* scratch, uint8_t* out) {
  const int kv_dim = cache_.kv_dim(), hd = static_cast<int>(hparams().head_dim);
  if (!layer_uses_rope(hparams(), layer)) {  // NoPE: a key does not depend on its position
    std::copy_n(cache_.key(layer, pos), cache_.key_bytes(), out);
    return;
  }
  cache_.decode_key(cache_.key(layer, pos), scratch);
  rope_apply(scratch, kv_dim / hd, hd, -count, rope_table(layer));  // no attention factor again
  cache_.encode_key(scratch, out);
}

// A ring's old and new rows overlap: gather the new window [from, to) first, then store it.
void Model::shift_rings(int keep, int count, int from, int to) {
  const size_t kb = static_cast<size_t>(cache_.key_bytes()), vb = static_cast<size_t>(cache_.value_bytes());
  pool_.parallel_for(hparams().n_layers, [&](int64_t l0, int64_t l1) {
    std::vector<float> k(static_cast<size_t>(cache_.kv_dim()));
    std::vector<uint8_t> keys(size_t(to - from) * kb), values(size_t(to - from) * vb);
    for (int l = static_cast<int>(l0); l < l1; ++l) {
      if (!cache_.ring(l)) continue;
      for (int p = from; p < to; ++p) {
        uint8_t* key = &keys[size_t(p - from) * kb];
        const int old = p < keep ? p : p + count;
        if (p < keep) std::copy_n(cache_.key(l, old), kb, key);
        else turn_key_back(l, old, count, k.data(), key);
        std::copy_n(cache_.value(l, old), vb, &values[size_t(p - from) * vb]);
      }
      for (int p = from; p < to; ++p) {
        std::copy_n(&keys[size_t(p - from) * kb], kb, cache_.key(l, p));
        std::copy_n(&values[size_t(p - from) * vb], vb, cache_.value(l, p));
        cache_.mirror(l, p);
      }
    }
  }, 1);
  ring_from_ = from;
}

}  // namespace qrun
