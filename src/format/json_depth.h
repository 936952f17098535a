// How deeply a parsed JSON value nests, counted without recursion: nlohmann's dump() and
// copies recurse, so JSON from a request or a model is measured before it is used.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace qrun {

// How deeply a parsed JSON value (any nlohmann type) nests, counted without recursion and
// only as far as `most` + 1.
template <class Json>
size_t json_depth(const Json& root, size_t most) {
  size_t deepest = 0;
  std::vector<std::pair<const Json*, size_t>> todo{{&root, 1}};
  while (!todo.empty()) {
    const auto [j, depth] = todo.back();
    todo.pop_back();
    deepest = std::max(deepest, depth);
    if (depth > most) break;
    if (j->is_structured())
      for (const Json& child : *j) todo.emplace_back(&child, depth + 1);
  }
  return deepest;
}

}  // namespace qrun
