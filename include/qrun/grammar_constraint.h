// Constrained generation: a token is allowed when the bytes it stands for keep the reply a
// prefix of what is asked for; an end-of-generation token (EOS, end of turn) when the reply
// is whole; and generate() stops by itself when nothing more can follow. By default one
// JSON object (OpenAI's response_format {"type": "json_object"}, llama.cpp's json
// grammar); with set_schema(), a JSON text a JSON schema accepts (response_format
// json_schema, llama.cpp's --json-schema; the subset is listed in
// src/runtime/json_schema_grammar.h); with set_gbnf(), a text of a llama.cpp GBNF grammar
// (--grammar, src/runtime/gbnf_grammar.h). In JSON, whitespace runs, number lengths and
// nesting are bounded so that a model cannot pad or nest forever; strings are bounded only
// by the token budget (or a schema's maxLength), so a reply cut by it is unfinished.
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

class GrammarConstraint {
 public:
  // Reads every token's bytes once. Special and control tokens are never allowed, except
  // the `kept` ones, which stand for their text (a tool call's markers, such as Mistral's
  // [TOOL_CALLS] and [ARGS], which the model was taught to write as those tokens).
  explicit GrammarConstraint(const Tokenizer& tok, std::span<const int32_t> kept = {});
  ~GrammarConstraint();

  // From now on, replies the schema (its JSON text) accepts. Throws qrun::Error naming the
  // schema's offending place (an empty text is not JSON), keeping the constraint as it was.
  void set_schema(std::string_view schema);
  void set_gbnf(std::string_view grammar);  // the same for a GBNF grammar's text
  // Tags and JSON values: src/runtime/json_schema_grammar.h's tagged_json_grammar().
  void set_tagged_json(std::string_view spec);
  void set_object();  // any JSON object again
  // The same checks without a tokenizer (qserve makes them before it queues a request).
  static void check_schema(std::string_view schema);
  static void check_gbnf(std::string_view grammar);
  static void check_tagged_json(std::string_view spec);

  void reset();                        // a new reply
  bool allows(int32_t token) const;
  void accept(int32_t token);          // throws qrun::Error for a token allows() refuses
  bool complete() const;               // the reply is whole
  // Sets the logit of every token allows() refuses to -infinity; returns how many are
  // allowed.
  int mask(std::span<float> logits) const;

  class Text;  // the recognizer of what is asked for (src/runtime/grammar_constraint.cpp)

 private:
  std::vector<std::string> bytes_;  // per token id; empty for special tokens
  std::vector<bool> ends_;          // per token id: EOS or end of turn
  // Per token, its characters when it leaves a string's text in a plain state (no quote,
  // no control byte, whole characters, whole escapes), else 0: allowed wherever the text
  // is between two characters of a string with room for them, so a mask inside a long
  // string feeds only the other tokens.
  std::vector<uint32_t> plain_chars_;
  std::unique_ptr<TokenTrie> trie_;  // mask() walks it outside strings
  std::unique_ptr<Text> text_;
};

}  // namespace qrun
