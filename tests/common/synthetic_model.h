// Full-size synthetic checkpoints (../shared/tools/synth_hf.py) converted to a qrun
// file, cached outside the repository ($QRUN_TEST_CACHE or /tmp/qrun-test-cache) so
// each is generated once per machine. Returns "" (and the reason) when python3 or
// numpy is missing, so callers can skip.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/run_command.h"
#include "common/test_paths.h"
#include "convert/converter.h"

namespace qrun::test {

inline std::filesystem::path test_cache_dir() {
  const char* env = std::getenv("QRUN_TEST_CACHE");
  std::filesystem::path p = env && *env ? env : "/tmp/qrun-test-cache";
  std::filesystem::create_directories(p);
  return p;
}

// Test processes run in parallel (ctest -j) and may ask for the same model at once: one
// makes it while the others wait on the lock, since a checkpoint rewritten under another
// process's mapping of it raises SIGBUS there. Both are made under temporary names and
// renamed, so an interrupted run leaves nothing that looks finished.
inline std::string synthetic_model(const std::string& preset, DType type, std::string* why_not) {
  const auto cache = test_cache_dir();
  const auto hf = cache / ("hf-" + preset);
  const auto out = cache / (preset + "." + std::string(dtype_name(type)));
  const int lock = ::open((cache / (preset + ".lock")).c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock < 0 || ::flock(lock, LOCK_EX) != 0) {
    *why_not = "cannot lock " + (cache / (preset + ".lock")).string();
    if (lock >= 0) ::close(lock);
    return "";
  }
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock};
  if (std::filesystem::exists(out)) return out.string();
  if (!std::filesystem::exists(hf / "config.json")) {
    const auto tmp = cache / ("hf-" + preset + ".tmp" + std::to_string(::getpid()));
    std::filesystem::remove_all(tmp);
    const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    const auto r = run_command(python + " " + quoted((shared_dir() / "tools/synth_hf.py").string()) + " --preset " +
                               preset + " --tokenizer-dir " + quoted((shared_dir() / "tokenizers/llama2").string()) +
                               " " + quoted(tmp.string()));
    if (r.exit_code != 0) {
      std::filesystem::remove_all(tmp);
      *why_not = "synth_hf.py failed (python3-numpy missing?): " + r.out;
      return "";
    }
    std::filesystem::remove_all(hf);
    std::filesystem::rename(tmp, hf);
  }
  ConvertOptions opt;
  opt.weight_type = type;
  opt.threads = 2;
  convert_hf_checkpoint(hf.string(), out.string(), opt);  // writes a temporary file and renames it
  return out.string();
}

}  // namespace qrun::test
