#include "simd/prefetch.h"

#include <atomic>
#include <stdexcept>

namespace qrun {

namespace {
std::atomic<uint8_t> g_level{static_cast<uint8_t>(PrefetchConfig{}.level)};
std::atomic<int64_t> g_distance{PrefetchConfig{}.distance};
std::atomic<int64_t> g_distance_wide{PrefetchConfig{}.distance_wide};
std::atomic<int> g_matvec_rows{PrefetchConfig{}.matvec_rows};

std::string describe_bytes(int64_t bytes) {
  return bytes % 1024 == 0 ? std::to_string(bytes / 1024) + "KiB" : std::to_string(bytes) + "B";
}
}  // namespace

void set_prefetch_config(const PrefetchConfig& c) {
  g_level.store(static_cast<uint8_t>(c.level), std::memory_order_relaxed);
  g_distance.store(c.distance, std::memory_order_relaxed);
  g_distance_wide.store(c.distance_wide, std::memory_order_relaxed);
  g_matvec_rows.store(c.matvec_rows, std::memory_order_relaxed);
}

PrefetchConfig prefetch_config() {
  return {static_cast<PrefetchLevel>(g_level.load(std::memory_order_relaxed)),
          g_distance.load(std::memory_order_relaxed), g_distance_wide.load(std::memory_order_relaxed),
          g_matvec_rows.load(std::memory_order_relaxed)};
}

PrefetchConfig prefetch_config_for(bool wide_rows) {
  PrefetchConfig c = prefetch_config();
  if (wide_rows) c.distance = c.distance_wide;
  return c;
}

std::string describe(const PrefetchConfig& c) {
  std::string text = "none";
  if (c.level != PrefetchLevel::None) {
    text = (c.level == PrefetchLevel::L1 ? "l1+" : "l2+") + describe_bytes(c.distance);
    if (c.distance_wide != c.distance) text += ", q8/float " + describe_bytes(c.distance_wide);
  }
  if (c.matvec_rows == 1) text += ", q8/q6/q5 matvec by single rows";
  return text;
}

PrefetchConfig parse_prefetch_config(const std::string& text) {
  const auto bad = [&] {
    return std::invalid_argument("prefetch '" + text +
                                 "': expected none, l1:BYTES, l2:BYTES or LEVEL:BYTES/BYTES_WIDE (e.g. l1:8k/3k), "
                                 "optionally followed by ,rows:1 or ,rows:4");
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
  std::string head = text;
  int rows = PrefetchConfig{}.matvec_rows;
  if (const size_t comma = text.find(','); comma != std::string::npos) {
    const std::string tail = text.substr(comma + 1);
    if (tail != "rows:1" && tail != "rows:4") throw bad();
    rows = tail.back() - '0';
    head = text.substr(0, comma);
  }
  if (head == "none") return {PrefetchLevel::None, 0, 0, rows};
  if (head.size() < 4 || head[2] != ':' || (head.compare(0, 2, "l1") != 0 && head.compare(0, 2, "l2") != 0))
    throw bad();
  const PrefetchLevel level = head[1] == '1' ? PrefetchLevel::L1 : PrefetchLevel::L2;
  const size_t slash = head.find('/', 3);
  if (slash == std::string::npos) {
    const int64_t d = bytes(head.substr(3));
    return {level, d, d, rows};
  }
  return {level, bytes(head.substr(3, slash - 3)), bytes(head.substr(slash + 1)), rows};
}

}  // namespace qrun
