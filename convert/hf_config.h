// Hugging Face config.json -> qrun hyper-parameters, for the supported architectures.
#pragma once

#include <filesystem>
#include <vector>

#include "qrun/format.h"

namespace qrun {

struct HfConfig {
  format::HParams hp;
  std::vector<float> rope_short_factors, rope_long_factors;  // LongRoPE (Phi-3), one per frequency
  // Gemma3ForConditionalGeneration (4B and up): the language model's tensors sit under a
  // prefix, beside a vision tower qrun does not run (the converter maps and skips them).
  bool multimodal = false;
};

// Throws qrun::Error naming config.json and the problem (malformed JSON, missing
// field, unsupported architecture with the list of supported ones).
HfConfig read_hf_config_full(const std::filesystem::path& dir);
inline format::HParams read_hf_config(const std::filesystem::path& dir) { return read_hf_config_full(dir).hp; }

}  // namespace qrun
