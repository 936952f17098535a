#include "simd/prefetch.h"

#include <atomic>
#include <stdexcept>

namespace qrun {

namespace {
std::atomic<uint8_t> g_level{static_cast<uint8_t>(PrefetchConfig{}.level)};
std::atomic<int64_t> g_distance{PrefetchConfig{}.distance};
std::atomic<int64_t> g_distance_wide{PrefetchConfig{}.distance_wide};

std::string describe_bytes(int64_t bytes) {
  return bytes % 1024 == 0 ? std::to_string(bytes / 1024) + "KiB" : std::to_string(bytes) + "B";
}
}  // namespace

void set_prefetch_config(const PrefetchConfig& c) {
  g_level.store(static_cast<uint8_t>(c.level), std::memory_order_relaxed);
  g_distance.store(c.distance, std::memory_order_relaxed);
  g_distance_wide.store(c.distance_wide, std::memory_order_relaxed);
}

PrefetchConfig prefetch_config() {
  return {static_cast<PrefetchLevel>(g_level.load(std::memory_order_relaxed)),
          g_distance.load(std::memory_order_relaxed), g_distance_wide.load(std::memory_order_relaxed)};
}

PrefetchConfig prefetch_config_for(bool wide_rows) {
  PrefetchConfig c = prefetch_config();
  if (wide_rows) c.distance = c.distance_wide;
  return c;
}

std::string describe(const PrefetchConfig& c) {
  if (c.level == PrefetchLevel::None) return "none";
  std::string text = (c.level == PrefetchLevel::L1 ? "l1+" : "l2+") + describe_bytes(c.distance);
  if (c.distance_wide != c.distance) text += ", q8/float " + describe_bytes(c.distance_wide);
  return text;
}

PrefetchConfig parse_prefetch_config(const std::string& text) {
  const auto bad = [&] {
    return std::invalid_argument("prefetch '" + text +
                                 "': expected none, l1:BYTES, l2:BYTES or LEVEL:BYTES/BYTES_WIDE (e.g. l1:8k/3k)");
  };
  const auto bytes = [&](std::string num) {
    int64_t scale = 1;
    if (!num.empty() && (num.back() == 'k' || num.back() == 'K')) {
      scale = 1024;
      num.pop_back();
    }
    if (num.empty() || num.size() > 6 || num.find_first_not_of("0123456789") != std::string::npos) throw bad();
    const int64_t distance = std::stoll(num) * scale;
    if (distance < 64 || distance > (1 << 20)) throw bad();
    return distance;
  };
  if (text == "none") return {PrefetchLevel::None, 0, 0};
  if (text.size() < 4 || text[2] != ':' || (text.compare(0, 2, "l1") != 0 && text.compare(0, 2, "l2") != 0))
    throw bad();
  const PrefetchLevel level = text[1] == '1' ? PrefetchLevel::L1 : PrefetchLevel::L2;
  const size_t slash = text.find('/', 3);
  if (slash == std::string::npos) {
    const int64_t d = bytes(text.substr(3));
    return {level, d, d};
  }
  return {level, bytes(text.substr(3, slash - 3)), bytes(text.substr(slash + 1))};
}

}  // namespace qrun
