// The BPE merge loop shared by both tokenizer kinds: start from symbols (UTF-8
// characters, or given pieces), repeatedly merge the adjacent pair with the best
// priority (lowest value; ties go to the leftmost pair). A priority queue with lazy
// invalidation over a linked list keeps it O(n log n), so a 1 MB input without
// spaces is as fast per byte as a short word.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace qrun {

struct Segment {
  uint32_t start;
  uint32_t len;
};

// priority(left, right) -> the merged pair's priority, or nullopt when the pair does
// not merge. Returns the final segments in order.
std::vector<Segment> bpe_merge(std::string_view text, std::vector<Segment> symbols,
                               const std::function<std::optional<double>(std::string_view, std::string_view)>& priority);

// Splits text into UTF-8 characters; an invalid byte becomes a one-byte symbol.
std::vector<Segment> utf8_symbols(std::string_view text);

// Length of the UTF-8 character starting with byte c (1 for invalid lead bytes).
int utf8_len(uint8_t c);

}  // namespace qrun
