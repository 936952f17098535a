// Predicted peak memory of a run, before loading: what `qrun --estimate` prints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qrun/model.h"

namespace qrun {

// Process baseline measured on this runtime: code, libraries (OpenBLAS, libstdc++),
// thread stacks and allocator arenas, before any model data (bench/memory_bench.sh).
inline constexpr uint64_t kRuntimeOverheadBytes = 6ull << 20;

// The same run with the model stored as another type (qconvert --type T): to pick the
// type that fits a memory budget before converting.
struct TypeEstimate {
  std::string type;            // "q4m", "q8", ...
  double bits_per_weight = 0;  // over the 2-D matrices but the token embedding (bench/compare_quality.sh's count)
  uint64_t weights = 0;        // every layer resident (mmap, no budget, no GPU)
  uint64_t total = 0;
};

struct MemoryEstimate {
  uint64_t weights = 0;      // mapped model pages resident at peak
  uint64_t kv_cache = 0;
  std::string kv_types = "f16";  // describe_kv_types
  uint64_t scratch = 0;      // activations, int8 activations, attention tiles, logits
  uint64_t tokenizer = 0;
  uint64_t runtime = kRuntimeOverheadBytes;
  int resident_layers = 0;
  int n_layers = 0;
  uint64_t device = 0;       // GPU memory of offloaded layers (weights, KV cache, buffers); not in total()
  int gpu_layers = 0;
  uint64_t budget = 0;       // --mem-budget, 0 for none
  uint64_t draft = 0;        // a speculative draft model (-md): its weights, KV cache, scratch and tokenizer
  uint64_t lora = 0;         // run-time LoRA adapters' f16 factors (RuntimeOptions::lora)
  std::vector<TypeEstimate> as_types;  // largest first (with the draft)
  uint64_t total() const { return weights + kv_cache + scratch + tokenizer + runtime + draft + lora; }
};

// Reads only the header of `path` (and of `draft_path`, a draft model run as
// draft_runtime_options() runs it, when not empty); throws if the configuration cannot
// fit the budget.
MemoryEstimate estimate_memory(const std::string& path, const RuntimeOptions& options, const std::string& draft_path = {});

std::string format_estimate(const MemoryEstimate& e);

}  // namespace qrun
