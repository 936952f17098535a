// A byte-at-a-time JSON recognizer for constrained generation: feed() accepts a byte
// only while the text so far can still be completed to one JSON object (RFC 8259, an
// object at the top level, as OpenAI's response_format json_object promises).
// Beyond the grammar it bounds what a model could otherwise repeat forever: runs of
// whitespace, digits in a number, nesting depth. The state is small and copyable
// except for the nesting stack, so the JsonConstraint can try a token's bytes on a copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace qrun {

class JsonPrefix {
 public:
  // Between two tokens of the grammar: one line break (\n, \r\n or \r) and up to 20 spaces
  // or tabs to indent, as llama.cpp's json grammar allows; a model that likes blank
  // lines would otherwise fill its budget with them.
  static constexpr int kMaxWhitespace = 20;
  static constexpr int kMaxNumberLength = 24;
  // Two exponent digits keep every number a finite double (at most 1e119): parsers such
  // as nlohmann's refuse 1e400 rather than read infinity.
  static constexpr int kMaxExponentDigits = 2;
  static constexpr int kMaxDepth = 64;

  bool feed(uint8_t c);  // false (and the state unchanged) when c cannot continue the text
  bool feed(std::string_view bytes);  // all or nothing
  bool complete() const { return mode_ == Mode::Done; }
  // Inside a string between characters: what a byte does here depends on nothing else
  // (not the nesting, not whether the string is a key), which JsonConstraint uses to
  // take plain-text tokens without feeding them.
  bool in_plain_string() const { return mode_ == Mode::String && pending_utf8_ == 0 && !low_surrogate_; }
  bool in_string() const { return mode_ == Mode::String || mode_ == Mode::Escape || mode_ == Mode::Unicode; }

 private:
  enum class Mode : uint8_t {
    Start,          // before the top-level '{'
    ValueStart,     // after ':' or ',' in an array
    ArrayFirst,     // after '[': a value or ']'
    ObjectFirst,    // after '{': a key or '}'
    KeyStart,       // after ',' in an object: a key
    String,         // inside a string
    Escape,         // after '\'
    Unicode,        // in \uXXXX
    AfterKey,       // expects ':'
    AfterValue,     // expects ',' or the closing bracket
    Number,         // see number_
    Literal,        // true, false, null
    Done,           // the top-level object closed; only whitespace may follow
  };
  enum class NumberPart : uint8_t { Minus, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits };

  bool step(uint8_t c);
  bool whitespace_allowed() const;
  bool close_value();  // a value ended: where does the container go next
  bool close_container();
  bool start_value(uint8_t c);
  bool number(uint8_t c);
  char top() const { return stack_.empty() ? '\0' : stack_.back(); }

  Mode mode_ = Mode::Start;
  NumberPart number_ = NumberPart::Minus;
  bool key_ = false;            // the string being read is an object key
  uint8_t pending_utf8_ = 0;    // continuation bytes the current character still needs
  uint8_t hex_left_ = 0;        // in \uXXXX
  uint16_t code_unit_ = 0;      // its digits so far
  bool low_surrogate_ = false;  // a \u high surrogate was read: its low one must follow
  uint8_t utf8_low_ = 0x80, utf8_high_ = 0xBF;  // the next continuation byte's range
  uint8_t literal_at_ = 0;      // bytes of `literal_` matched
  const char* literal_ = nullptr;
  int whitespace_ = 0;   // spaces and tabs in this run
  uint8_t line_breaks_ = 0;  // bit 0: a \n in this run, bit 1: a \r
  int number_length_ = 0;
  int exponent_digits_ = 0;
  std::string stack_;  // '{' and '[' of the open containers
};

}  // namespace qrun
