// The resolved run plan: every choice a run makes before it loads (context, threads,
// prompt batch, and per layer whether it stays resident, is streamed under a memory
// budget or runs on the GPU), with the buffer sizes that follow. Model, the memory
// estimate, the layer streamer and the GPU offload all read this one plan.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qrun/kv_type.h"
#include "qrun/model_file.h"

namespace qrun {

struct RuntimeOptions;  // qrun/model.h

enum class LayerPlace : uint8_t { Resident, Streamed, Gpu };

struct RunPlan {
  int context = 0;
  int threads = 0;
  int batch = 0;                   // prompt tokens per forward batch
  // Bits of the activations Q8 matrices multiply (simd/kernels.h) in prompt batches and
  // in one-token steps; 0: the model has no Q8 matrix.
  int q8_prompt_bits = 0, q8_step_bits = 0;
  std::vector<LayerPlace> layers;  // one per layer
  int gpu_first = 0, gpu_count = 0;
  // Per host KV slot: the ring of positions a sliding-window layer keeps (window + batch,
  // where that is under half the context and RuntimeOptions::swa_full is off), 0: the
  // whole context.
  std::vector<int> kv_ring;
  KvType kv_key_type = KvType::F16, kv_value_type = KvType::F16;  // host KV cache
  uint64_t kv_cache_bytes = 0;     // host KV cache: CPU layers only
  uint64_t scratch_bytes = 0;      // activations, int8 activations, attention tiles, logits
  uint64_t weight_bytes = 0;       // host pages of weights resident at peak
  uint64_t stream_window_bytes = 0;  // two streamed layers in flight (in weight_bytes)
  uint64_t device_bytes = 0;       // GPU memory of the offloaded layers

  int count(LayerPlace p) const;
  bool on_gpu(int layer) const { return layers[static_cast<size_t>(layer)] == LayerPlace::Gpu; }
  // The layer's slot in the host KV cache (-1 for a GPU layer, whose cache is on the device).
  int kv_slot(int layer) const;
  int ring_positions() const;  // the sliding layers' ring, 0 when none keeps one
  // Forward-batch rows that need 16-bit activation buffers: a whole batch, since
  // Model::steps() runs a batch of steps (a draft's guesses).
  int q8_wide_rows() const { return q8_prompt_bits == 16 || q8_step_bits == 16 ? batch : 0; }
  // "q8 activations 16-bit in steps, 8-bit in prompts", or "" without Q8 matrices.
  std::string describe_q8_activations() const;
};

// Resolves `options` against the file's header. Throws qrun::Error naming the file when
// the GPU range is outside the model or the memory budget cannot hold what must stay.
RunPlan plan_run(const ModelFile& file, const RuntimeOptions& options);

}  // namespace qrun
