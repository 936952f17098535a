// A JSON file of a model folder (config.json, tokenizer.json, modules.json...), with
// errors that name the file.
#pragma once

#include <filesystem>

#include <nlohmann/json.hpp>

namespace qrun {

// Throws qrun::Error naming `path` when it cannot be opened or is not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace qrun
