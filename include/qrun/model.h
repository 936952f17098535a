// A loaded model ready to run: the mapped file, its tokenizer, the KV cache and the
// scratch buffers of one conversation. forward() runs a batch of tokens through
// every layer (src/runtime/forward.cpp reads like llama2.c's forward()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qrun/kv_cache.h"
#include "qrun/lora.h"
#include "qrun/model_file.h"
#include "qrun/run_plan.h"
#include "qrun/thread_pool.h"
#include "qrun/tokenizer.h"

namespace qrun {

struct ActivationBuffers;

struct RuntimeOptions {
  LoadMode load_mode = LoadMode::Mmap;
  int threads = 0;        // 0: physical cores
  int context = 0;        // 0: min(trained context, 4096)
  int batch = 0;          // prompt tokens per forward batch; 0: chosen for the weight type
  bool verify_checksums = false;
  uint64_t mem_budget = 0;     // bytes; 0: no budget (plain mmap). See src/runtime/layer_streamer.h
  int gpu_first_layer = 0;     // layers [gpu_first_layer, +gpu_layer_count) run on the GPU
  int gpu_layer_count = 0;     // 0: CPU only (src/runtime/gpu_offload.h)
  std::string prefetch;        // kernel prefetch, e.g. "l2:24k"; empty: chosen for this CPU
  bool blas = true;            // float-weight prompt batches through OpenBLAS sgemm
  // Bits of the activations Q8 matrices multiply: 8, 16 (half the KL divergence, slower
  // prompts), 0: 16 in generation steps (step()) where the CPU's kernel does them in one
  // pass, else 8. Prompt tokens always take the prompt bits, however they are batched.
  int q8_activation_bits = 0;
  // Sliding-window layers keep every position of the context, not a ring of the window
  // (more memory; a cached prefix is then always reused, see Model::truncate).
  bool swa_full = false;
  // How the KV cache stores keys and values (llama.cpp's --cache-type-k/-v): f16, or
  // q8_0 for 47% less memory. Layers on the GPU keep theirs in f16.
  KvType cache_type_k = KvType::F16, cache_type_v = KvType::F16;
  // LoRA updates of projections (include/qrun/lora.h: load_lora_updates), applied on top
  // of the mapped weights; shared by every Model given them. Not with GPU layers.
  std::shared_ptr<const LoraUpdates> lora;
};

// The inputs the projections read, one per group of matrices that share it.
enum class MatrixInput {
  AttentionIn,   // the normed attention input: wq, wk, wv
  AttentionOut,  // the attention output: wo
  FfnIn,         // the normed feed-forward input: w1, w3
  FfnHidden,     // the activated hidden state, swiglu/geglu(w1 x, w3 x): w2
  SharedHidden,  // a shared expert's activated hidden state (Qwen2-MoE): w2_shared
  Head,          // the final normed hidden state: the output head (layer -1)
};

// Sees each projection input as forward() computes it: n_tokens rows of cols floats,
// valid only during the call. qconvert --calibrate collects their statistics
// (convert/calibration.h). Layers offloaded to a GPU are not observed.
using InputObserver = std::function<void(int layer, MatrixInput which, const float* x, int n_tokens, int64_t cols)>;

// The context a model runs with: `requested`, or min(trained context, 4096) when 0.
int resolved_context(const format::HParams& hp, int requested);

struct ModelWeights;   // src/runtime/layer_weights.h
class LayerStreamer;  // src/runtime/layer_streamer.h
class GpuOffload;     // src/runtime/gpu_offload.h

class Model {
 public:
  Model(const std::string& path, const RuntimeOptions& options);
  ~Model();

  const format::HParams& hparams() const { return file_.hparams(); }
  const ModelFile& file() const { return file_; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  int context_length() const { return cache_.capacity(); }
  int threads() const { return pool_.size(); }
  int position() const { return pos_; }
  const KvCache& kv_cache() const { return cache_; }  // the CPU layers' keys and values
  // The tokens whose keys and values the cache holds, position by position.
  std::span<const int32_t> tokens() const { return {tokens_.data(), static_cast<size_t>(pos_)}; }

  // Runs prompt `tokens` at positions position() .. position()+n-1 and advances the
  // position. logits receives vocab_size floats for the last token, or n * vocab_size when
  // all_logits (perplexity, teacher forcing). Throws when the context would overflow.
  // A prompt's logits do not depend on how it is split into calls and batches, so a
  // cached prefix (truncate) gives what evaluating the whole prompt gives (bit for bit on
  // qrun's kernels; float weights' prompt batches on OpenBLAS round by the batch's shape).
  void forward(std::span<const int32_t> tokens, float* logits, bool all_logits = false);
  // Runs one generated token: as forward() of one token, but with the step precision of
  // the run plan (RunPlan::q8_step_bits), which may differ from the prompts'.
  void step(int32_t token, float* logits);
  // Runs generated tokens in one batch at step()'s precision: logits for each (n *
  // vocab_size floats), as step() gives them one by one on qrun's kernels (speculative
  // decoding checks a draft's guesses with it).
  void steps(std::span<const int32_t> tokens, float* logits);
  // Runs `tokens` as forward() does, but writes each token's final normed hidden state
  // (hparams().dim floats per token) to `hidden` instead of logits: what embeddings pool
  // (include/qrun/embedding.h).
  void forward_hidden(std::span<const int32_t> tokens, float* hidden);

  // Where each layer lives, the context, threads, batch and buffer sizes of this run.
  const RunPlan& plan() const { return plan_; }
  int resident_layers() const { return plan_.count(LayerPlace::Resident); }
  int streamed_layers() const { return plan_.count(LayerPlace::Streamed); }
  int gpu_layers() const { return plan_.gpu_count; }
  std::string gpu_device() const;   // empty when CPU only
  const std::string& kernel_choice() const { return kernel_choice_; }  // e.g. "prefetch l2+24KiB (Zen 4 default)"
  // Bytes of activation and scratch buffers (for the memory estimate).
  uint64_t scratch_bytes() const;

  // Called with every projection input from now on; an empty function stops it.
  void set_input_observer(InputObserver observer) { observer_ = std::move(observer); }

  // Forget the conversation (the KV cache is reused).
  void reset() { truncate(0); }
  // Keep the first n cached tokens and forget the rest (prefix reuse: a prompt that
  // extends tokens()[0, n) evaluates only its new tokens). Sliding layers that keep a
  // ring (RunPlan::kv_ring) may no longer hold the window before n: then nothing is kept
  // and position() is 0.
  void truncate(int n);
  // Context shift: forget `count` tokens after the first `keep` and move the later ones
  // down, so generation can go on in a full context. Cached keys are rotated back by
  // `count` positions (RoPE of p - count = RoPE(-count) after RoPE(p)); layers on a GPU,
  // or sliding-window rings that dropped a kept token the new window needs, are
  // recomputed from the kept tokens instead.
  void shift_context(int keep, int count);

 private:
  // states, when set, receives the final normed hidden states and no logits are made.
  void forward_tokens(std::span<const int32_t> tokens, float* logits, bool all_logits, bool step, float* states = nullptr);
  void forward_batch(const int32_t* tokens, int n, float* logits, bool all_logits, bool step, float* states);
  // The FFN steps after the norm: xb (n rows) -> xb2. One FFN, or the experts the
  // router picks for each token (src/runtime/experts_ffn.cpp).
  void dense_ffn(int layer, int n, const ActivationBuffers& act);
  void experts_ffn(int layer, int n, const ActivationBuffers& act);
  void ffn_activation(float* gate, const float* up, int64_t n) const;
  // Attention of the batch's n query rows (in s_->q, cached from pos0) into s_->xb
  // (src/runtime/attention_step.cpp).
  void attention(int layer, int slot, int n, int pos0);
  // A layer's RoPE frequencies: the sliding layers' own where the model has them (Gemma 3).
  bool local_rope(int layer) const;
  const std::vector<float>& rope_table(int layer) const;
  // Context shift helpers: a cached key turned back by `count` positions; the rings'
  // new window [from, to) gathered from the old positions.
  void turn_key_back(int layer, int pos, int count, float* scratch, uint8_t* out);
  void shift_rings(int keep, int count, int from, int to);
  // Points the adapted projections' Weight::lora at their updates (RuntimeOptions::lora).
  void attach_lora(std::shared_ptr<const LoraUpdates> lora);

  ModelFile file_;
  Tokenizer tokenizer_;
  RunPlan plan_;
  ThreadPool pool_;
  KvCache cache_;
  std::unique_ptr<ModelWeights> w_;
  struct Scratch;
  std::unique_ptr<Scratch> s_;
  std::unique_ptr<LayerStreamer> streamer_;
  std::unique_ptr<GpuOffload> gpu_;
  std::shared_ptr<const LoraUpdates> lora_;  // what Weight::lora points into
  std::vector<float> rope_inv_freq_;
  std::vector<float> rope_local_inv_freq_;  // empty: every layer takes rope_inv_freq_
  float rope_attn_factor_ = 1.0f;           // the global table's (the local one is unscaled)
  int batch_;
  std::string kernel_choice_;
  int pos_ = 0;
  int ring_from_ = 0;            // the first position the sliding layers' rings still hold
  std::vector<int32_t> tokens_;  // capacity: context_length()
  InputObserver observer_;       // usually empty: forward() then pays one test per input
};

}  // namespace qrun
