#include "src/tokenizer/bpe_merge.h"

#include <queue>

namespace qrun {

int utf8_len(uint8_t c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return 2;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return 4;
  return 1;
}

std::vector<Segment> utf8_symbols(std::string_view text) {
  std::vector<Segment> out;
  out.reserve(text.size());
  uint32_t i = 0;
  const auto n = static_cast<uint32_t>(text.size());
  while (i < n) {
    uint32_t len = static_cast<uint32_t>(utf8_len(static_cast<uint8_t>(text[i])));
    // A truncated or malformed sequence: take the lead byte alone.
    bool ok = i + len <= n;
    for (uint32_t k = 1; ok && k < len; ++k) ok = (static_cast<uint8_t>(text[i + k]) & 0xC0) == 0x80;
    if (!ok) len = 1;
    out.push_back({i, len});
    i += len;
  }
  return out;
}

std::vector<Segment> bpe_merge(std::string_view text, std::vector<Segment> symbols,
                               const std::function<std::optional<double>(std::string_view, std::string_view)>& priority) {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return symbols;
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    double priority;
    int left;
    uint32_t left_len, right_len;  // to detect that either side changed since
    bool operator>(const Candidate& o) const {
      return priority != o.priority ? priority > o.priority : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto view = [&](int i) {
    const Segment& s = symbols[static_cast<size_t>(i)];
    return text.substr(s.start, s.len);
  };
  auto consider = [&](int left) {
    if (left < 0) return;
    const int right = next[static_cast<size_t>(left)];
    if (right < 0) return;
    if (auto p = priority(view(left), view(right)))
      queue.push({*p, left, symbols[static_cast<size_t>(left)].len, symbols[static_cast<size_t>(right)].len});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Segment& l = symbols[static_cast<size_t>(c.left)];
    const int right = next[static_cast<size_t>(c.left)];
    if (l.len != c.left_len || right < 0 || symbols[static_cast<size_t>(right)].len != c.right_len) continue;
    // Merge right into left; the right symbol leaves the list (len 0 marks it dead).
    Segment& r = symbols[static_cast<size_t>(right)];
    l.len += r.len;
    r.len = 0;
    next[static_cast<size_t>(c.left)] = next[static_cast<size_t>(right)];
    if (next[static_cast<size_t>(right)] >= 0) prev[static_cast<size_t>(next[static_cast<size_t>(right)])] = c.left;
    consider(prev[static_cast<size_t>(c.left)]);
    consider(c.left);
  }
  std::vector<Segment> out;
  for (int i = 0; i >= 0; i = next[static_cast<size_t>(i)]) out.push_back(symbols[static_cast<size_t>(i)]);
  return out;
}

}  // namespace qrun
