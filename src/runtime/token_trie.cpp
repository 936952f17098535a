#include "src/runtime/token_trie.h"

#include <algorithm>

namespace qrun {

TokenTrie::TokenTrie(std::span<const std::string> texts) {
  for (size_t id = 0; id < texts.size(); ++id)
    if (!texts[id].empty()) ids_.push_back(static_cast<int32_t>(id));
  std::sort(ids_.begin(), ids_.end(), [&](int32_t a, int32_t b) {
    return texts[static_cast<size_t>(a)] < texts[static_cast<size_t>(b)];
  });
  build(0, 0, ids_.size(), 0, texts);
}

// ids_[lo, hi) share their first `depth` bytes, which lead to `node`. Sorted, the texts
// that end here come first, then one run per next byte.
void TokenTrie::build(uint32_t node, size_t lo, size_t hi, size_t depth, std::span<const std::string> texts) {
  const auto text = [&](size_t i) -> const std::string& { return texts[static_cast<size_t>(ids_[i])]; };
  size_t i = lo;
  while (i < hi && text(i).size() == depth) ++i;
  nodes_[node].first_token = static_cast<uint32_t>(lo);
  nodes_[node].tokens = static_cast<uint32_t>(i - lo);
  std::vector<std::pair<size_t, size_t>> runs;
  while (i < hi) {
    size_t j = i;
    while (j < hi && text(j)[depth] == text(i)[depth]) ++j;
    runs.emplace_back(i, j);
    i = j;
  }
  const auto first = static_cast<uint32_t>(nodes_.size());
  nodes_[node].first_child = first;
  nodes_[node].children = static_cast<uint32_t>(runs.size());
  for (const auto& [a, b] : runs) {
    Node child;
    child.byte = static_cast<uint8_t>(text(a)[depth]);
    nodes_.push_back(child);
  }
  for (size_t k = 0; k < runs.size(); ++k) build(first + static_cast<uint32_t>(k), runs[k].first, runs[k].second, depth + 1, texts);
}

}  // namespace qrun
