#include "qrun/memory_estimate.h"

#include <algorithm>
#include <cstdio>

#include "quant/type_policy.h"

#include "qrun/generate.h"
#include "qrun/model_file.h"
#include "qrun/run_plan.h"
#include "src/runtime/layer_streamer.h"

namespace qrun {

namespace {

// Each type's bytes for this file's tensors, by the converter's own policy, paged in as
// plan_run counts them; the header, tokenizer and alignment are as in this file.
std::vector<TypeEstimate> as_other_types(const ModelFile& file, int context, uint64_t non_weight_bytes) {
  const uint64_t align = file.header().alignment;
  uint64_t tensor_bytes = 0;
  for (const TensorView& t : file.tensors()) tensor_bytes += format::align_up(t.size, align);
  const uint64_t overhead = file.header().file_size - std::min(tensor_bytes, file.header().file_size);
  std::vector<TypeEstimate> out;
  for (const TypePolicy& policy : type_policies()) {
    TypeEstimate e;
    e.type = type_policy_name(policy);
    uint64_t bytes = 0, matrix_bytes = 0, matrix_weights = 0;
    for (const TensorView& t : file.tensors()) {
      const uint64_t b = static_cast<uint64_t>(t.rows * dtype_row_bytes(storage_type_for(t.name, t.cols, policy), t.cols));
      bytes += format::align_up(b, align);
      if (t.name == "tok_embeddings" && !file.hparams().tied_embeddings)
        bytes -= table_bytes_not_paged_in(b, file.hparams().vocab_size, static_cast<uint64_t>(context));
      if (t.rows > 1 && t.name != "tok_embeddings") {
        matrix_bytes += b;
        matrix_weights += static_cast<uint64_t>(t.rows * t.cols);
      }
    }
    e.bits_per_weight = matrix_weights ? 8.0 * static_cast<double>(matrix_bytes) / static_cast<double>(matrix_weights) : 0;
    e.weights = bytes + overhead;
    e.total = e.weights + non_weight_bytes;
    out.push_back(e);
  }
  std::sort(out.begin(), out.end(), [](const TypeEstimate& a, const TypeEstimate& b) { return a.weights > b.weights; });
  return out;
}

}  // namespace

MemoryEstimate estimate_memory(const std::string& path, const RuntimeOptions& options, const std::string& draft_path) {
  const ModelFile file(path);
  const RunPlan plan = plan_run(file, options);
  MemoryEstimate e;
  e.n_layers = static_cast<int>(plan.layers.size());
  e.kv_cache = plan.kv_cache_bytes;
  e.kv_types = describe_kv_types(plan.kv_key_type, plan.kv_value_type);
  e.scratch = plan.scratch_bytes;
  // Vocabulary strings, their lookup tables and merge ranks: about 4x the blob.
  e.tokenizer = 4 * file.header().tokenizer_size;
  e.weights = plan.weight_bytes;
  e.resident_layers = plan.count(LayerPlace::Resident);
  e.gpu_layers = plan.gpu_count;
  e.device = plan.device_bytes;
  e.budget = options.mem_budget;
  if (!draft_path.empty()) {
    const MemoryEstimate d = estimate_memory(draft_path, draft_runtime_options(plan.context, options));
    e.draft = d.total() - d.runtime;  // one process
  }
  if (options.lora)
    for (const auto& [name, u] : *options.lora) e.lora += 2 * (u.a.size() + u.b.size());
  e.as_types = as_other_types(file, plan.context, e.kv_cache + e.scratch + e.tokenizer + e.runtime + e.draft + e.lora);
  return e;
}

std::string format_estimate(const MemoryEstimate& e) {
  auto mib = [](uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "weights   %9.1f MiB (%d of %d layers resident on the host)\n"
                "kv cache  %9.1f MiB (%s)\n"
                "scratch   %9.1f MiB\n"
                "tokenizer %9.1f MiB\n"
                "runtime   %9.1f MiB\n",
                mib(e.weights), e.resident_layers, e.n_layers, mib(e.kv_cache), e.kv_types.c_str(), mib(e.scratch),
                mib(e.tokenizer),
                mib(e.runtime));
  std::string out = buf;
  if (e.draft > 0) {
    std::snprintf(buf, sizeof buf, "draft     %9.1f MiB (-md: its weights, kv cache, scratch, tokenizer)\n", mib(e.draft));
    out += buf;
  }
  if (e.lora > 0) {
    std::snprintf(buf, sizeof buf, "lora      %9.1f MiB (--lora: the adapters' f16 factors, private)\n", mib(e.lora));
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "total     %9.1f MiB\n", mib(e.total()));
  out += buf;
  if (e.gpu_layers > 0) {
    std::snprintf(buf, sizeof buf, "device    %9.1f MiB GPU memory (%d layers: weights, their KV cache, buffers)\n",
                  mib(e.device), e.gpu_layers);
    out += buf;
  }
  if (!e.as_types.empty()) {
    out += "\nas another type (qconvert --type T), same settings, every layer resident:\n"
           "type  bits/weight  weights MiB    total MiB\n";
    for (const TypeEstimate& t : e.as_types) {
      std::snprintf(buf, sizeof buf, "%-5s %11.2f %12.1f %12.1f%s\n", t.type.c_str(), t.bits_per_weight, mib(t.weights),
                    mib(t.total), e.budget == 0 ? "" : t.total <= e.budget ? "  fits the budget" : "  over the budget");
      out += buf;
    }
  }
  return out;
}

}  // namespace qrun
