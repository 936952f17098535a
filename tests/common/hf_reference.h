// Tiny synthetic checkpoints of each architecture with their float64 reference outputs
// (tests/reference/hf_reference.py), made once per machine in the test cache.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/run_command.h"
#include "common/test_paths.h"
#include "common/synthetic_model.h"

namespace qrun::test {

// The checkpoint folder; "" and why when python3 or numpy is missing. The cache entry is
// named by a hash of the script, so an edited reference is made afresh.
inline std::string reference_checkpoint(const std::string& arch, std::string* why_not) {
  const auto script = std::filesystem::path(QRUN_SOURCE_DIR) / "tests/reference/hf_reference.py";
  uint64_t hash = 1469598103934665603ull;  // FNV-1a
  for (const char ch : read_text(script)) hash = (hash ^ static_cast<uint8_t>(ch)) * 1099511628211ull;
  char tag[17];
  std::snprintf(tag, sizeof tag, "%016llx", static_cast<unsigned long long>(hash));
  const auto dir = test_cache_dir() / ("hf-ref-" + arch + "-" + tag);
  if (std::filesystem::exists(dir / "reference.json")) return dir.string();
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const auto r = run_command(python + " " + quoted(script.string()) + " make " + arch + " " + quoted(dir.string()));
  if (r.exit_code != 0) {
    *why_not = "hf_reference.py failed (python3-numpy missing?): " + r.out;
    return "";
  }
  return dir.string();
}

// What reference.json holds: the token sequence, the reference logits and final normed
// hidden states at every position, the 16 greedy tokens after it and how far each
// greedy choice's logit was ahead of the runner-up.
struct Reference {
  std::vector<int32_t> tokens, greedy;
  std::vector<std::vector<double>> logits, hidden;
  std::vector<double> margins;
};

inline Reference load_reference(const std::string& dir) {
  std::ifstream in(dir + "/reference.json");
  const auto j = nlohmann::json::parse(in);
  return {j["tokens"].get<std::vector<int32_t>>(), j["greedy"].get<std::vector<int32_t>>(),
          j["logits"].get<std::vector<std::vector<double>>>(), j["hidden"].get<std::vector<std::vector<double>>>(),
          j["margins"].get<std::vector<double>>()};
}

// The checkpoint converted to `type` as out/model.qrun: its path, or "" and why.
inline std::string converted_reference(const std::string& arch, DType type, const std::filesystem::path& out,
                                       std::string* why_not) {
  const std::string dir = reference_checkpoint(arch, why_not);
  if (dir.empty()) return "";
  const auto path = out / "model.qrun";
  ConvertOptions opt;
  opt.weight_type = type;
  convert_hf_checkpoint(dir, path.string(), opt);
  return path.string();
}

}  // namespace qrun::test
