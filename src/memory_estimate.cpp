#include "qrun/memory_estimate.h"

#include <cstdio>

#include "qrun/model_file.h"
#include "qrun/run_plan.h"

namespace qrun {

MemoryEstimate estimate_memory(const std::string& path, const RuntimeOptions& options) {
  const ModelFile file(path);
  const RunPlan plan = plan_run(file, options);
  MemoryEstimate e;
  e.n_layers = static_cast<int>(plan.layers.size());
  e.kv_cache = plan.kv_cache_bytes;
  e.scratch = plan.scratch_bytes;
  // Vocabulary strings, their lookup tables and merge ranks: about 4x the blob.
  e.tokenizer = 4 * file.header().tokenizer_size;
  e.weights = plan.weight_bytes;
  e.resident_layers = plan.count(LayerPlace::Resident);
  e.gpu_layers = plan.gpu_count;
  e.device = plan.device_bytes;
  return e;
}

std::string format_estimate(const MemoryEstimate& e) {
  auto mib = [](uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "weights   %9.1f MiB (%d of %d layers resident on the host)\n"
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
