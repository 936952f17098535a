// A byte-at-a-time JSON recognizer for constrained generation: feed() accepts a byte
// only while the text so far can still be completed to one JSON object (RFC 8259, an
// object at the top level, as OpenAI's response_format json_object promises).
// Beyond the grammar it bounds what a model could otherwise repeat forever: runs of
// whitespace, digits in a number (json_lexers.h), nesting depth. The state is small and
// copyable except for the nesting stack, so GrammarConstraint can try a token's bytes on a copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "src/runtime/json_lexers.h"

namespace qrun {

class JsonPrefix {
 public:
  static constexpr int kMaxWhitespace = JsonSpaceLexer::kMaxSpaces;
  static constexpr int kMaxNumberLength = JsonNumberLexer::kMaxLength;
  static constexpr int kMaxDepth = 64;

  bool feed(uint8_t c);  // false (and the state unchanged) when c cannot continue the text
  bool feed(std::string_view bytes);  // all or nothing
  bool complete() const { return mode_ == Mode::Done; }
  bool accepted() const { return complete(); }
  bool same_state(const JsonPrefix& o) const { return *this == o; }
  bool operator==(const JsonPrefix&) const = default;
  bool in_plain_string() const { return mode_ == Mode::String && string_.between_chars(); }
  // How many characters of plain text the text can take here (see GrammarPrefix).
  uint32_t plain_string_room() const { return in_plain_string() ? JsonStringLexer::kUnbounded : 0; }
  bool in_string() const { return mode_ == Mode::String; }

 private:
  enum class Mode : uint8_t {
    Start,          // before the top-level '{'
    ValueStart,     // after ':' or ',' in an array
    ArrayFirst,     // after '[': a value or ']'
    ObjectFirst,    // after '{': a key or '}'
    KeyStart,       // after ',' in an object: a key
    String,         // inside a string: see string_
    AfterKey,       // expects ':'
    AfterValue,     // expects ',' or the closing bracket
    Number,         // inside a number: see number_
    Literal,        // true, false, null
    Done,           // the top-level object closed; only whitespace may follow
  };

  bool step(uint8_t c);
  bool whitespace_allowed() const;
  bool close_value();  // a value ended: where does the container go next
  bool close_container();
  bool start_value(uint8_t c);
  char top() const { return stack_.empty() ? '\0' : stack_.back(); }

  Mode mode_ = Mode::Start;
  bool key_ = false;  // the string being read is an object key
  JsonStringLexer string_;
  JsonNumberLexer number_;
  JsonSpaceLexer space_;
  uint8_t literal_at_ = 0;  // bytes of `literal_` matched
  const char* literal_ = nullptr;
  std::string stack_;  // '{' and '[' of the open containers
};

}  // namespace qrun
