// The vocabulary trie that GrammarConstraint::mask walks: every token sits where its bytes
// lead, once, and children are distinct bytes.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "common/test_paths.h"
#include "qrun/tokenizer.h"
#include "src/runtime/token_trie.h"

namespace qrun {
namespace {

TEST(TokenTrie, EveryTokenSitsWhereItsBytesLead) {
  const Tokenizer qwen(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (int32_t id = 0; id < qwen.vocab_size(); ++id) {
    texts.push_back(id % 1000 == 7 ? std::string() : qwen.token_text(id, false));  // some left out
    bytes += texts.back().size();
  }
  texts.push_back(texts[100]);  // two ids with one text
  const TokenTrie trie(texts);
  EXPECT_LE(trie.size(), bytes + 1);
  size_t listed = 0;
  std::vector<const TokenTrie::Node*> todo{&trie.root()};
  while (!todo.empty()) {
    const TokenTrie::Node* n = todo.back();
    todo.pop_back();
    listed += n->tokens;
    std::set<uint8_t> seen;
    for (const TokenTrie::Node& c : trie.children(*n)) {
      EXPECT_TRUE(seen.insert(c.byte).second);
      todo.push_back(&c);
    }
  }
  size_t present = 0;
  for (size_t id = 0; id < texts.size(); ++id) {
    if (texts[id].empty()) continue;
    ++present;
    const TokenTrie::Node* n = &trie.root();
    for (const char c : texts[id]) {
      const TokenTrie::Node* next = nullptr;
      for (const TokenTrie::Node& child : trie.children(*n))
        if (child.byte == static_cast<uint8_t>(c)) next = &child;
      ASSERT_NE(next, nullptr) << "token " << id;
      n = next;
    }
    const auto ids = trie.tokens(*n);
    EXPECT_NE(std::find(ids.begin(), ids.end(), static_cast<int32_t>(id)), ids.end()) << "token " << id;
  }
  EXPECT_EQ(listed, present);
}

}  // namespace
}  // namespace qrun
