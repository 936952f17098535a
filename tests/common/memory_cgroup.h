// A child memory cgroup with a hard limit, for running a process under real memory
// pressure: cgroup v2 (memory.max) where the memory controller is on the unified
// hierarchy, else v1 (memory.limit_in_bytes). Creation fails (and tests skip) where
// the machine does not allow it.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace qrun::test {

class MemoryCgroup {
 public:
  // On failure, ok() is false and why() says what was missing.
  explicit MemoryCgroup(uint64_t limit_bytes) {
    namespace fs = std::filesystem;
    std::ifstream self("/proc/self/cgroup");
    std::string line, v1_path, v2_path;
    while (std::getline(self, line)) {
      const auto a = line.find(':'), b = line.find(':', a + 1);
      const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
      if (controllers == "memory") v1_path = path;
      if (line.rfind("0::", 0) == 0) v2_path = path;
    }
    const std::string name = "qrun-test-" + std::to_string(::getpid());
    if (fs::exists("/sys/fs/cgroup/cgroup.controllers") && read("/sys/fs/cgroup/cgroup.controllers").find("memory") != std::string::npos) {
      dir_ = fs::path("/sys/fs/cgroup") / fs::path(v2_path).relative_path() / name;
      v2_ = true;
    } else if (!v1_path.empty() && fs::exists("/sys/fs/cgroup/memory")) {
      dir_ = fs::path("/sys/fs/cgroup/memory") / fs::path(v1_path).relative_path() / name;
    } else {
      why_ = "no memory cgroup controller found";
      return;
    }
    std::error_code ec;
    if (!fs::create_directory(dir_, ec)) {
      why_ = "cannot create " + dir_.string() + ": " + ec.message();
      dir_.clear();
      return;
    }
    const bool set = v2_ ? write("memory.max", std::to_string(limit_bytes)) && (write("memory.swap.max", "0"), true)
                         : write("memory.limit_in_bytes", std::to_string(limit_bytes));
    if (!set) why_ = "cannot set the memory limit in " + dir_.string();
  }
  ~MemoryCgroup() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  bool ok() const { return !dir_.empty() && why_.empty(); }
  const std::string& why() const { return why_; }
  // Shell prefix that moves the command's shell into the cgroup before it runs.
  std::string enter_prefix() const { return "echo $$ > " + (dir_ / "cgroup.procs").string() + " && exec "; }

  uint64_t oom_kills() const {
    const std::string events = read((dir_ / (v2_ ? "memory.events" : "memory.oom_control")).string());
    const auto at = events.find("oom_kill ");
    return at == std::string::npos ? 0 : std::stoull(events.substr(at + 9));
  }
  uint64_t peak_bytes() const {
    const std::string v = read((dir_ / (v2_ ? "memory.peak" : "memory.max_usage_in_bytes")).string());
    return v.empty() ? 0 : std::stoull(v);
  }

 private:
  static std::string read(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool write(const std::string& file, const std::string& value) const {
    std::ofstream out(dir_ / file);
    out << value;
    out.flush();
    return static_cast<bool>(out);
  }

  std::filesystem::path dir_;
  bool v2_ = false;
  std::string why_;
};

}  // namespace qrun::test
