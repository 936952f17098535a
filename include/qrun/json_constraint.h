// Constrained generation of one JSON object (OpenAI's response_format
// {"type": "json_object"}, llama.cpp's json grammar): a token is allowed when the bytes
// it stands for keep the reply a prefix of a JSON object, and the reply ends when the
// object closes. Whitespace runs, number lengths and nesting are bounded so that a
// model cannot pad or nest forever (JsonPrefix's limits); strings are bounded only by the
// token budget, so a reply cut by it is an unfinished object.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qrun/tokenizer.h"

namespace qrun {

class JsonPrefix;  // src/runtime/json_prefix.h

class JsonConstraint {
 public:
  // Reads every token's bytes once (special and control tokens are never allowed).
  explicit JsonConstraint(const Tokenizer& tok);
  ~JsonConstraint();

  void reset();                        // a new reply
  bool allows(int32_t token) const;
  void accept(int32_t token);          // throws qrun::Error for a token allows() refuses
  bool complete() const;               // the object closed
  // Sets the logit of every token allows() refuses to -infinity; returns how many are
  // allowed.
  int mask(std::span<float> logits) const;

 private:
  std::vector<std::string> bytes_;  // per token id; empty for special tokens
  // Tokens that leave a string's text in a plain state (no quote, no control byte,
  // whole characters, whole escapes): allowed wherever the text is in_plain_string(),
  // so a mask inside a long string feeds only the others.
  std::vector<bool> plain_;
  std::unique_ptr<JsonPrefix> text_;
};

}  // namespace qrun
