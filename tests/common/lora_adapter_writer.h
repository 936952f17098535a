// Writes PEFT LoRA adapter folders (adapter_config.json, adapter_model.safetensors) for
// tests of qconvert --lora and the run-time --lora.
#pragma once

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/safetensors_writer.h"
#include "common/test_paths.h"
#include "convert/safetensors.h"
#include "quant/quantize.h"

namespace qrun::test {

// n values in [-amplitude, amplitude) from a fixed sequence per seed.
inline std::vector<float> pseudo_random(size_t n, uint32_t seed, float amplitude) {
  std::vector<float> v(n);
  for (float& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = amplitude * (static_cast<float>(seed >> 8) / float(1 << 24) * 2.0f - 1.0f);
  }
  return v;
}

// F16 tensor of the values (rounded to f16).
inline RawTensor f16_tensor(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
  RawTensor t{name, "F16", std::move(shape), std::vector<uint8_t>(v.size() * 2)};
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = f32_to_f16(v[i]);
    std::memcpy(&t.bytes[2 * i], &h, 2);
  }
  return t;
}

// An adapter of rank 4 (lora_alpha 8) on each named module of the checkpoint in `hf`,
// shaped from its weights, its factors F16 (as PEFT saves a half-precision model's):
// with a power-of-two scale, run-time f16 factors then hold the merge's values exactly.
inline void write_lora_adapter(const std::filesystem::path& hf, const std::filesystem::path& dir,
                               const std::vector<std::string>& modules) {
  const SafetensorsCheckpoint ckpt(hf);
  std::vector<RawTensor> tensors;
  uint32_t seed = 1;
  for (const std::string& m : modules) {
    const SafeTensor* w = ckpt.find(m + ".weight");
    ASSERT_NE(w, nullptr) << m;
    const int64_t rows = w->shape[0], cols = w->shape[1];
    tensors.push_back(f16_tensor("base_model.model." + m + ".lora_A.weight", {4, cols},
                                 pseudo_random(size_t(4 * cols), seed++, 0.3f)));
    tensors.push_back(f16_tensor("base_model.model." + m + ".lora_B.weight", {rows, 4},
                                 pseudo_random(size_t(rows * 4), seed++, 0.3f)));
  }
  std::filesystem::create_directories(dir);
  write_safetensors(dir / "adapter_model.safetensors", tensors);
  write_text(dir / "adapter_config.json", R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8})");
}

// Every attention and FFN projection of stories260K's layer `layer`.
inline std::vector<std::string> stories_layer_modules(int layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  return {p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj", p + "self_attn.o_proj",
          p + "mlp.gate_proj",    p + "mlp.up_proj",      p + "mlp.down_proj"};
}

}  // namespace qrun::test
