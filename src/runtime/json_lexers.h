// The parts of JSON text that a byte-at-a-time recognizer reads with a small state of
// their own: a string's contents, a number, a run of whitespace. JsonPrefix (any object)
// and GrammarPrefix (a JSON schema's grammar) share them, so that both take the same
// strings, numbers and whitespace. A step that refuses a byte may leave the lexer changed:
// callers try bytes on copies.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <limits>

namespace qrun {

// What follows a string's opening quote, up to and including the closing one: well-formed
// UTF-8 (Unicode's table 3-7: no overlong forms, no surrogates, nothing past U+10FFFF),
// the escapes of RFC 8259, \u surrogates in pairs, high then low, as parsers that decode
// them to UTF-8 (nlohmann, Rust's serde) require. Counts characters (code points, an
// escape counting as the one it stands for) for a schema's minLength and maxLength.
class JsonStringLexer {
 public:
  static constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
  enum class Step : uint8_t { Refused, Inside, Closed };

  Step step(uint8_t c, uint32_t min_chars = 0, uint32_t max_chars = kUnbounded);
  // Between two characters: what a byte does here depends on nothing else (not the
  // nesting, not whether the string is a key), which GrammarConstraint uses to take
  // plain-text tokens without feeding them.
  bool between_chars() const { return mode_ == Mode::Body && pending_utf8_ == 0 && !low_surrogate_; }
  uint32_t chars() const { return chars_; }
  bool operator==(const JsonStringLexer&) const = default;

 private:
  enum class Mode : uint8_t { Body, Escape, Unicode };
  bool start_char(uint32_t max_chars);

  Mode mode_ = Mode::Body;
  uint8_t pending_utf8_ = 0;    // continuation bytes the current character still needs
  uint8_t utf8_low_ = 0x80, utf8_high_ = 0xBF;  // the next continuation byte's range
  uint8_t hex_left_ = 0;        // in \uXXXX
  uint16_t code_unit_ = 0;      // its digits so far
  bool low_surrogate_ = false;  // a \u high surrogate was read: its low one must follow
  uint32_t chars_ = 0;
};

// A number from its first byte ('-' or a digit) on. Bounded in length, and its exponent
// to two digits so that every number is a finite double (at most 1e119): parsers such as
// nlohmann's refuse 1e400 rather than read infinity. An integer (a schema's "integer")
// has neither fraction nor exponent; a decimal (a schema's number with bounds) no exponent.
class JsonNumberLexer {
 public:
  static constexpr int kMaxLength = 24;
  static constexpr int kMaxExponentDigits = 2;
  enum class Shape : uint8_t { Any, Decimal, Integer };

  bool start(uint8_t c);
  bool step(uint8_t c, Shape shape = Shape::Any);  // whether c continues the number
  bool can_end() const;  // the number so far is whole (it does not end in '-', '.', 'e' or a sign)
  // A schema's minimum and maximum. For an integer: whether more digits can still make it
  // one from low to high, and whether it is one now.
  bool integer_may_reach(int64_t low, int64_t high) const;
  bool integer_within(int64_t low, int64_t high) const;
  // The same for a decimal, its text compared with the bounds as decimals (the schema
  // compiler passes the ones the schema wrote: 0.1, not its double 0.1000000000000000055...).
  bool decimal_may_reach(long double low, long double high) const;
  bool decimal_within(long double low, long double high) const;
  bool operator==(const JsonNumberLexer&) const = default;

 private:
  enum class Part : uint8_t { Minus, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits };
  bool to(Part part, int needs);
  bool step_part(uint8_t c, Shape shape);

  Part part_ = Part::Minus;
  int length_ = 0;
  int exponent_digits_ = 0;
  bool negative_ = false;
  int int_digits_ = 0;
  __int128 magnitude_ = 0;  // of the integer part, while it has at most 20 digits
  std::array<char, kMaxLength> text_{};
  std::string unsigned_text() const;  // the text so far without its '-'
  long double magnitude() const;      // of that text, to long double's precision
};

// A run of whitespace between two tokens of the grammar: one line break (\n, \r\n or \r)
// and up to 20 spaces or tabs to indent, as llama.cpp's json grammar allows; a model that
// likes blank lines would otherwise fill its budget with them.
class JsonSpaceLexer {
 public:
  static constexpr int kMaxSpaces = 20;
  static bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

  bool step(uint8_t c);  // c is_space(): whether the run may take it
  bool operator==(const JsonSpaceLexer&) const = default;

 private:
  int spaces_ = 0;
  uint8_t line_breaks_ = 0;  // bit 0: a \n in this run, bit 1: a \r
};

}  // namespace qrun
