// Progress for long work: a redrawn bar on a terminal, plain log lines otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace qrun {

class ProgressBar {
 public:
  ProgressBar(std::string label, FILE* out = stderr);
  // Called with the fraction done and what is being worked on; throttled.
  void update(uint64_t done, uint64_t total, const std::string& item);
  void finish();

 private:
  std::string label_;
  FILE* out_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace qrun
