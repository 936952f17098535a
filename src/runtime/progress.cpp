#include "qrun/progress.h"

#include <unistd.h>

namespace qrun {

ProgressBar::ProgressBar(std::string label, FILE* out)
    : label_(std::move(label)), out_(out), tty_(isatty(fileno(out)) != 0) {}

void ProgressBar::update(uint64_t done, uint64_t total, const std::string& item) {
  const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  if (!tty_) {
    // Logs get one line per 10%, not one per tensor.
    const int decile = static_cast<int>(frac * 10);
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(out_, "%s: %3d%% %s\n", label_.c_str(), decile * 10, item.c_str());
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (done < total && now - last_draw_ < std::chrono::milliseconds(50)) return;
  last_draw_ = now;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(out_, "\r%s [%s] %3d%% %-32.32s", label_.c_str(), bar.c_str(), static_cast<int>(frac * 100),
               item.c_str());
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (tty_) std::fprintf(out_, "\n");
}

}  // namespace qrun
