// Constrained generation of JSON: a token is allowed when the bytes it stands for keep the
// reply a prefix of what is asked for, and the reply ends when that is whole. By default
// one JSON object (OpenAI's response_format {"type": "json_object"}, llama.cpp's json
// grammar); with set_schema(), a JSON text a JSON schema accepts (response_format
// json_schema, llama.cpp's --json-schema; the subset is listed in
// src/runtime/json_schema_grammar.h). Whitespace runs, number lengths and nesting are
// bounded so that a model cannot pad or nest forever; strings are bounded only by the
// token budget (or a schema's maxLength), so a reply cut by it is unfinished.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qrun/tokenizer.h"

namespace qrun {

class TokenTrie;  // src/runtime/token_trie.h

class JsonConstraint {
 public:
  // Reads every token's bytes once (special and control tokens are never allowed).
  explicit JsonConstraint(const Tokenizer& tok);
  ~JsonConstraint();

  // From now on, replies the schema (its JSON text) accepts. Throws qrun::Error naming the
  // schema's offending place (an empty text is not JSON), keeping the constraint as it was.
  void set_schema(std::string_view schema);
  void set_object();  // any JSON object again
  // The same checks without a tokenizer (qserve makes them before it queues a request).
  static void check_schema(std::string_view schema);

  void reset();                        // a new reply
  bool allows(int32_t token) const;
  void accept(int32_t token);          // throws qrun::Error for a token allows() refuses
  bool complete() const;               // the reply is whole
  // Sets the logit of every token allows() refuses to -infinity; returns how many are
  // allowed.
  int mask(std::span<float> logits) const;

  class Text;  // the recognizer of what is asked for (src/runtime/json_constraint.cpp)

 private:
  std::vector<std::string> bytes_;  // per token id; empty for special tokens
  // Per token, its characters when it leaves a string's text in a plain state (no quote,
  // no control byte, whole characters, whole escapes), else 0: allowed wherever the text
  // is between two characters of a string with room for them, so a mask inside a long
  // string feeds only the other tokens.
  std::vector<uint32_t> plain_chars_;
  std::unique_ptr<TokenTrie> trie_;  // mask() walks it outside strings
  std::unique_ptr<Text> text_;
};

}  // namespace qrun
