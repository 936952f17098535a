#include "qrun/memory_estimate.h"

#include <algorithm>
#include <cstdio>

#include "qrun/model.h"
#include "qrun/model_file.h"
#include "qrun/thread_pool.h"
#include "src/gpu_offload.h"
#include "src/kernel_choice.h"
#include "src/layer_streamer.h"
#include "src/model_scratch.h"

namespace qrun {

MemoryEstimate estimate_memory(const std::string& path, const RuntimeOptions& options) {
  const ModelFile file(path);
  const auto& hp = file.hparams();
  const int threads = options.threads > 0 ? options.threads : physical_core_count();
  const int ctx = resolved_context(hp, options.context);
  MemoryEstimate e;
  e.n_layers = static_cast<int>(hp.n_layers);
  e.kv_cache = uint64_t{hp.n_layers} * 2 * static_cast<uint64_t>(ctx) * hp.n_kv_heads * hp.head_dim * sizeof(uint16_t);
  const int batch = prompt_batch(file, options.batch);
  e.scratch = ScratchSizes(hp, batch, threads).bytes() + uint64_t{hp.vocab_size} * sizeof(float);
  // Vocabulary strings, their lookup tables and merge ranks: about 4x the blob.
  e.tokenizer = 4 * file.header().tokenizer_size;
  if (options.mem_budget > 0) {
    const StreamingPlan plan = plan_streaming(file, options.mem_budget, e.kv_cache + e.scratch + e.runtime);
    e.resident_layers = plan.resident_layers;
    e.weights = plan.resident_bytes + plan.window_bytes + file.header().data_offset;
  } else {
    e.resident_layers = e.n_layers;
    e.weights = file.header().file_size;
    if (options.load_mode != LoadMode::ReadPrivate) e.weights -= embedding_bytes_not_paged_in(file, ctx);
  }
  if (options.gpu_layer_count > 0) {
    const GpuLayerRange range = checked_gpu_range(path, options.gpu_first_layer, options.gpu_layer_count, e.n_layers);
    e.gpu_layers = range.count;
    e.device = GpuOffload::device_bytes(file, range, ctx, batch);
  }
  return e;
}

std::string format_estimate(const MemoryEstimate& e) {
  auto mib = [](uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "weights   %9.1f MiB (%d of %d layers resident)\n"
                "kv cache  %9.1f MiB\n"
                "scratch   %9.1f MiB\n"
                "tokenizer %9.1f MiB\n"
                "runtime   %9.1f MiB\n"
                "total     %9.1f MiB\n",
                mib(e.weights), e.resident_layers, e.n_layers, mib(e.kv_cache), mib(e.scratch), mib(e.tokenizer),
                mib(e.runtime), mib(e.total()));
  std::string out = buf;
  if (e.gpu_layers > 0) {
    std::snprintf(buf, sizeof buf, "device    %9.1f MiB GPU memory (%d layers: weights, their KV cache, buffers)\n",
                  mib(e.device), e.gpu_layers);
    out += buf;
  }
  return out;
}

}  // namespace qrun
