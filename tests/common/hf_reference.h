// Tiny synthetic checkpoints of each architecture with their float64 reference outputs
// (tests/reference/hf_reference.py), made once per machine in the test cache.
#pragma once

#include <filesystem>
#include <string>

#include "common/run_command.h"
#include "common/synthetic_model.h"

namespace qrun::test {

// The checkpoint folder; "" and why when python3 or numpy is missing.
inline std::string reference_checkpoint(const std::string& arch, std::string* why_not) {
  const auto dir = test_cache_dir() / ("hf-ref-" + arch);
  if (std::filesystem::exists(dir / "reference.json")) return dir.string();
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  const auto script = std::filesystem::path(QRUN_SOURCE_DIR) / "tests/reference/hf_reference.py";
  const auto r = run_command(python + " " + quoted(script.string()) + " make " + arch + " " + quoted(dir.string()));
  if (r.exit_code != 0) {
    *why_not = "hf_reference.py failed (python3-numpy missing?): " + r.out;
    return "";
  }
  return dir.string();
}

}  // namespace qrun::test
