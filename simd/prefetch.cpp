#include "simd/prefetch.h"

#include <atomic>
#include <stdexcept>

namespace qrun {

namespace {
std::atomic<uint8_t> g_level{static_cast<uint8_t>(PrefetchConfig{}.level)};
std::atomic<int64_t> g_distance{PrefetchConfig{}.distance};
}  // namespace

void set_prefetch_config(const PrefetchConfig& c) {
  g_level.store(static_cast<uint8_t>(c.level), std::memory_order_relaxed);
  g_distance.store(c.distance, std::memory_order_relaxed);
}

PrefetchConfig prefetch_config() {
  return {static_cast<PrefetchLevel>(g_level.load(std::memory_order_relaxed)), g_distance.load(std::memory_order_relaxed)};
}

std::string describe(const PrefetchConfig& c) {
  if (c.level == PrefetchLevel::None) return "none";
  const std::string level = c.level == PrefetchLevel::L1 ? "l1" : "l2";
  if (c.distance % 1024 == 0) return level + "+" + std::to_string(c.distance / 1024) + "KiB";
  return level + "+" + std::to_string(c.distance) + "B";
}

PrefetchConfig parse_prefetch_config(const std::string& text) {
  const auto bad = [&] {
    return std::invalid_argument("prefetch '" + text + "': expected none, l1:BYTES or l2:BYTES (e.g. l2:24k)");
  };
  if (text == "none") return {PrefetchLevel::None, 0};
  if (text.size() < 4 || text[2] != ':' || (text.compare(0, 2, "l1") != 0 && text.compare(0, 2, "l2") != 0))
    throw bad();
  std::string num = text.substr(3);
  int64_t scale = 1;
  if (!num.empty() && (num.back() == 'k' || num.back() == 'K')) {
    scale = 1024;
    num.pop_back();
  }
  if (num.empty() || num.size() > 6 || num.find_first_not_of("0123456789") != std::string::npos) throw bad();
  const int64_t distance = std::stoll(num) * scale;
  if (distance < 64 || distance > (1 << 20)) throw bad();
  return {text[1] == '1' ? PrefetchLevel::L1 : PrefetchLevel::L2, distance};
}

}  // namespace qrun
