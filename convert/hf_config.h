// Hugging Face config.json -> qrun hyper-parameters, for the supported architectures.
#pragma once

#include <filesystem>

#include "qrun/format.h"

namespace qrun {

// Throws qrun::Error naming config.json and the problem (malformed JSON, missing
// field, unsupported architecture with the list of supported ones).
format::HParams read_hf_config(const std::filesystem::path& dir);

}  // namespace qrun
