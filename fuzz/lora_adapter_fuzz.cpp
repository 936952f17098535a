// libFuzzer target: LoRA adapters. The input is read three times: as a PEFT folder's
// adapter_config.json beside a valid adapter_model.safetensors, then as its
// adapter_model.safetensors beside a valid config (convert/lora_adapter.h), then as a
// llama.cpp GGUF adapter file (convert/gguf_lora_adapter.h); each accepted adapter is
// matched against a base tensor and its rows merged.
#include <cstring>
#include <string>
#include <vector>

#include "convert/gguf_lora_adapter.h"
#include "convert/lora_adapter.h"
#include "fuzz/fuzz_util.h"

namespace {

// A safetensors file of the given F32 tensors (zeros) and shapes.
std::string safetensors_bytes(const std::vector<std::pair<std::string, std::vector<int64_t>>>& tensors) {
  std::string header = "{", data;
  for (const auto& [name, shape] : tensors) {
    int64_t n = 1;
    std::string dims;
    for (int64_t d : shape) {
      n *= d;
      dims += (dims.empty() ? "" : ",") + std::to_string(d);
    }
    header += (header.size() > 1 ? "," : "") + ("\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[" + dims +
                                                "],\"data_offsets\":[" + std::to_string(data.size()) + "," +
                                                std::to_string(data.size() + n * 4) + "]}");
    data.append(static_cast<size_t>(n * 4), '\0');
  }
  header += "}";
  std::string out(8, '\0');
  const uint64_t len = header.size();
  std::memcpy(out.data(), &len, 8);
  return out + header + data;
}

void merge_into_base(qrun::LoraAdapters& lora) {
  qrun::SafeTensor base{"model.layers.0.self_attn.q_proj.weight", qrun::SafeDType::F32, {8, 8}, nullptr, 0, "base"};
  const std::vector<qrun::LoraDelta> deltas = lora.deltas_for(base);
  lora.replacement_for("model.norm.weight");
  if (!deltas.empty()) {
    std::vector<float> row(8, 0.0f);
    qrun::LoraRowAdder(deltas, 8).add(7, row.data());
  }
  lora.check_all_used();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  static const std::string weights = safetensors_bytes({{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {2, 8}},
                                                        {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", {8, 2}}});
  static const std::string config = R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "alpha_pattern": {"q_proj": 2}})";
  const auto dir = fuzz::scratch_dir();
  for (int phase = 0; phase < 2; ++phase) {
    const std::string& fixed = phase == 0 ? weights : config;
    fuzz::write_input(phase == 0 ? "adapter_config.json" : "adapter_model.safetensors", data, size);
    fuzz::write_input(phase == 0 ? "adapter_model.safetensors" : "adapter_config.json",
                      reinterpret_cast<const uint8_t*>(fixed.data()), fixed.size());
    try {
      LoraAdapters lora({{dir, 1.0f}});
      merge_into_base(lora);
    } catch (const Error&) {
    }
  }
  // A GGUF adapter for a Llama model's layer-0 q projection [8, 8] (Q/K rows reordered).
  try {
    format::HParams hp{};
    hp.arch = static_cast<uint32_t>(format::Arch::Llama);
    hp.head_dim = 4;
    GgufLoraAdapter g({fuzz::write_input("adapter.gguf", data, size), 1.0f}, hp);
    const std::vector<LoraDelta> deltas = g.deltas_for("blk.0.attn_q.weight", "layers.0.wq", 8, 8);
    if (!deltas.empty()) {
      std::vector<float> row(8, 0.0f);
      LoraRowAdder(deltas, 8).add(7, row.data());
    }
    g.check_all_used();
  } catch (const Error&) {
  }
  return 0;
}
