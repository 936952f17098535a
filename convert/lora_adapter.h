// PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors, as PEFT's
// save_pretrained and Unsloth write them) merged into the base weights while converting:
// a Linear's W += scale * B A, an embedding's rows W[v] += scale * (B A[:, v]), and
// modules_to_save tensors replacing the base's. The merged file runs at the base's speed
// and quantizes the sum, as converting PEFT's merge_and_unload() output would.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "convert/safetensors.h"
#include "qrun/lora.h"

namespace qrun {

// One adapter's low-rank change of one base tensor [rows, cols].
struct LoraDelta {
  const SafeTensor* a;  // Linear: [r, cols]; embedding: [r, rows]
  const SafeTensor* b;  // Linear: [rows, r]; embedding: [cols, r]
  float scale;
  bool embedding;
  int64_t rank;
};

// LoraOption::scale multiplies the adapter's own lora_alpha / r (or / sqrt(r) with
// use_rslora).
class LoraAdapters {
 public:
  LoraAdapters() = default;
  explicit LoraAdapters(const std::vector<LoraOption>& options);
  LoraAdapters(LoraAdapters&&) noexcept;
  LoraAdapters& operator=(LoraAdapters&&) noexcept;
  ~LoraAdapters();

  bool empty() const { return adapters_.empty(); }
  // The changes to the base tensor named as in the checkpoint, shapes checked against
  // `base` ([rows, cols]); each adapter tensor returned counts as used.
  std::vector<LoraDelta> deltas_for(const SafeTensor& base);
  // A whole tensor from modules_to_save that replaces the base one, or null.
  const SafeTensor* replacement_for(const std::string& base_name);
  // Throws naming the first adapter tensor no base tensor took: the adapter is for
  // another model, or changes a tensor this conversion does not read.
  void check_all_used() const;

 private:
  struct Adapter;
  std::vector<std::unique_ptr<Adapter>> adapters_;
};

// The deltas of one base tensor applied to its rows: the f32 copy of each delta's
// factor that every row reads is made once per object (one per thread's row range).
class LoraRowAdder {
 public:
  LoraRowAdder(const std::vector<LoraDelta>& deltas, int64_t cols);
  // row (cols values) is row `r` of the base tensor.
  void add(int64_t r, float* row) const;

 private:
  const std::vector<LoraDelta>& deltas_;
  int64_t cols_;
  std::vector<std::vector<float>> shared_;  // Linear: A [r, cols]; embedding: B [cols, r]
};

}  // namespace qrun
