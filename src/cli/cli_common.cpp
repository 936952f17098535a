#include "src/cli/cli_common.h"

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qrun/error.h"

namespace qrun::cli {

namespace {
std::atomic<bool> g_interrupted{false};

void on_sigint(int) {
  if (g_interrupted.exchange(true)) {
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
}
}  // namespace

std::string read_text_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path, -1, "is a directory, not a " + what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, -1, "cannot open " + what);
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path, -1, "cannot read " + what);
  return ss.str();
}

void install_interrupt_handler() {
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read of stdin returns so the prompt can see it
  sigaction(SIGINT, &sa, nullptr);
}

bool take_interrupt() { return g_interrupted.exchange(false); }

}  // namespace qrun::cli
