// LoRA adapters applied at run time, as llama.cpp's --lora: each adapted projection
// computes W x + B (A x) with W read from the shared mapping as it is, so several
// processes (and adapters) share one base file. qconvert --lora merges them instead.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace qrun {

// A PEFT adapter folder (adapter_config.json, adapter_model.safetensors) or, at run time,
// a llama.cpp GGUF adapter file, and the factor its update is multiplied by (llama.cpp's
// --lora-scaled; 1 for --lora).
struct LoraOption {
  std::filesystem::path dir;
  float scale = 1.0f;
};

// The low-rank update of one matrix [rows, cols]: y += B (A x), every adapter's scale
// folded into B; several adapters of one matrix are stacked along the rank. The factors
// are f16 (IEEE half bits, qrun's F16 rows): decode reads them every token, as the weights.
struct LowRankUpdate {
  int64_t rows = 0, cols = 0, rank = 0;
  std::vector<uint16_t> a;  // [rank, cols]
  std::vector<uint16_t> b;  // [rows, rank]
};

// By qrun tensor name ("layers.3.wq", "output").
using LoraUpdates = std::map<std::string, LowRankUpdate>;

// The updates the adapters make to the model file's projections (implemented by the
// convert library, which reads PEFT's and GGUF files). Throws qrun::Error naming the adapter's
// file and tensor for one that does not fit the model, or that changes what only a
// merge can (embeddings, modules_to_save, experts: use qconvert --lora).
LoraUpdates load_lora_updates(const std::string& model_path, const std::vector<LoraOption>& adapters);

}  // namespace qrun
