#include "qrun/run_plan.h"

#include <algorithm>

#include "qrun/error.h"
#include "qrun/memory_estimate.h"
#include "qrun/model.h"
#include "qrun/model_layout.h"
#include "qrun/thread_pool.h"
#include "src/runtime/gpu_offload.h"
#include "src/runtime/kernel_choice.h"
#include "src/runtime/layer_streamer.h"
#include "src/runtime/model_scratch.h"

namespace qrun {

int RunPlan::count(LayerPlace p) const { return static_cast<int>(std::count(layers.begin(), layers.end(), p)); }

int RunPlan::kv_slot(int layer) const {
  if (on_gpu(layer)) return -1;
  return layer - (layer >= gpu_first + gpu_count ? gpu_count : 0);
}

int RunPlan::ring_positions() const {
  const auto it = std::find_if(kv_ring.begin(), kv_ring.end(), [](int r) { return r > 0; });
  return it == kv_ring.end() ? 0 : *it;
}

std::string RunPlan::describe_q8_activations() const {
  if (q8_step_bits == 0) return "";
  if (q8_step_bits == q8_prompt_bits) return "q8 activations " + std::to_string(q8_step_bits) + "-bit";
  return "q8 activations " + std::to_string(q8_step_bits) + "-bit in steps, " + std::to_string(q8_prompt_bits) +
         "-bit in prompts";
}

RunPlan plan_run(const ModelFile& file, const RuntimeOptions& options) {
  const auto& hp = file.hparams();
  const int n_layers = static_cast<int>(hp.n_layers);
  if (options.context < 0 || options.context > (1 << 20))
    throw Error(file.path(), -1, "context size " + std::to_string(options.context) + " out of range");
  RunPlan plan;
  plan.context = resolved_context(hp, options.context);
  if (options.threads < 0 || options.batch < 0)
    throw Error(file.path(), -1, "threads " + std::to_string(options.threads) + " and batch " +
                                     std::to_string(options.batch) + ": must be positive (0: chosen)");
  plan.threads = options.threads > 0 ? options.threads : physical_core_count();
  plan.batch = prompt_batch(file, options.batch);
  plan.layers.assign(static_cast<size_t>(n_layers), LayerPlace::Resident);
  if (options.gpu_layer_count > 0) {
    const GpuLayerRange range = checked_gpu_range(file.path(), options.gpu_first_layer, options.gpu_layer_count, n_layers);
    plan.gpu_first = range.first;
    plan.gpu_count = range.count;
    for (int l = range.first; l < range.first + range.count; ++l) plan.layers[static_cast<size_t>(l)] = LayerPlace::Gpu;
    plan.device_bytes = GpuOffload::device_bytes(file, range, plan.context, plan.batch);
  }
  // A sliding layer's queries read at most the window: its ring holds the window and the
  // batch whose keys are written before it attends.
  const int64_t ring = int64_t{hp.sliding_window} + plan.batch;
  const bool rings = hp.sliding_window && !options.swa_full && 2 * ring < plan.context;
  for (int l = 0; l < n_layers; ++l)
    if (!plan.on_gpu(l)) plan.kv_ring.push_back(rings && layer_is_sliding(hp, l) ? static_cast<int>(ring) : 0);
  plan.kv_key_type = options.cache_type_k;
  plan.kv_value_type = options.cache_type_v;
  const int kv_dim = static_cast<int>(hp.n_kv_heads * hp.head_dim), hd = static_cast<int>(hp.head_dim);
  const uint64_t kv_row = static_cast<uint64_t>(kv_row_bytes(plan.kv_key_type, kv_dim, hd) +
                                                kv_row_bytes(plan.kv_value_type, kv_dim, hd));
  for (const int r : plan.kv_ring) plan.kv_cache_bytes += static_cast<uint64_t>(r ? 2 * r : plan.context) * kv_row;
  const int bits = options.q8_activation_bits;
  if (bits != 0 && bits != 8 && bits != 16)
    throw Error(file.path(), -1, "q8 activation bits " + std::to_string(bits) + ": must be 8 or 16 (0: chosen)");
  if (std::any_of(file.tensors().begin(), file.tensors().end(), [](const TensorView& t) { return t.dtype == DType::Q8; })) {
    // Measured (tinyllama q8, Zen 5, one thread): 16 bits cost prompts 23% on the fused
    // AVX3_DL kernel and 40% on the others, one-token steps 2-3% on the fused one and
    // 4-17% on the others.
    plan.q8_prompt_bits = bits == 16 ? 16 : 8;
    plan.q8_step_bits = bits == 16 || (bits == 0 && fused_i16_activations()) ? 16 : 8;
  }
  plan.scratch_bytes = ScratchSizes(hp, plan.batch, plan.threads, plan.q8_wide_rows()).bytes() + uint64_t{hp.vocab_size} * sizeof(float);

  // Host weight pages: GPU layers are read once to upload and then dropped.
  uint64_t gpu_layer_bytes = 0;
  for (int l = plan.gpu_first; l < plan.gpu_first + plan.gpu_count; ++l) gpu_layer_bytes += file.layers()[size_t(l)].size;
  if (options.mem_budget > 0) {
    std::vector<bool> host(static_cast<size_t>(n_layers));
    for (int l = 0; l < n_layers; ++l) host[size_t(l)] = !plan.on_gpu(l);
    const StreamingPlan sp = plan_streaming(file, host, options.mem_budget,
                                            plan.kv_cache_bytes + plan.scratch_bytes + kRuntimeOverheadBytes);
    for (int l = 0; l < n_layers; ++l)
      if (host[size_t(l)] && !sp.resident[size_t(l)]) plan.layers[size_t(l)] = LayerPlace::Streamed;
    plan.stream_window_bytes = sp.window_bytes;
    plan.weight_bytes = sp.resident_bytes + sp.window_bytes + file.header().data_offset;
  } else {
    plan.weight_bytes = file.header().file_size;
    if (options.load_mode != LoadMode::ReadPrivate)  // --no-mmap reads the whole file
      plan.weight_bytes -= gpu_layer_bytes + embedding_bytes_not_paged_in(file, plan.context);
  }
  return plan;
}

}  // namespace qrun
