// The vocabulary's token texts as a byte trie, so that a constraint can find every token a
// recognizer allows by walking the trie: a byte the recognizer refuses prunes every token
// that continues with it (in JSON's structure, the ~40% of a BPE vocabulary that starts
// with a space is one subtree refused after two bytes).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qrun {

class TokenTrie {
 public:
  struct Node {
    uint32_t first_child = 0, children = 0;  // into nodes(), contiguous
    uint32_t first_token = 0, tokens = 0;    // into tokens(): ids whose text ends here
    uint8_t byte = 0;                        // the edge from the parent
  };

  TokenTrie() = default;
  // texts[id] for every token id; empty texts (special tokens) are left out.
  explicit TokenTrie(std::span<const std::string> texts);

  const Node& root() const { return nodes_[0]; }
  std::span<const Node> children(const Node& n) const { return {nodes_.data() + n.first_child, n.children}; }
  std::span<const int32_t> tokens(const Node& n) const { return {ids_.data() + n.first_token, n.tokens}; }
  size_t size() const { return nodes_.size(); }

 private:
  void build(uint32_t node, size_t lo, size_t hi, size_t depth, std::span<const std::string> texts);

  std::vector<Node> nodes_{Node{}};
  std::vector<int32_t> ids_;  // sorted by text
};

}  // namespace qrun
