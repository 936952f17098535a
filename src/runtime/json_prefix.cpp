#include "src/runtime/json_prefix.h"

namespace qrun {

namespace {

bool is_whitespace(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_line_break(uint8_t c) { return c == '\n' || c == '\r'; }
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

bool JsonPrefix::feed(uint8_t c) {
  const JsonPrefix before = *this;
  if (step(c)) return true;
  *this = before;
  return false;
}

bool JsonPrefix::feed(std::string_view bytes) {
  JsonPrefix next = *this;
  for (const char c : bytes)
    if (!next.step(static_cast<uint8_t>(c))) return false;
  *this = std::move(next);
  return true;
}

bool JsonPrefix::whitespace_allowed() const {
  switch (mode_) {
    case Mode::Start:
    case Mode::ValueStart:
    case Mode::ArrayFirst:
    case Mode::ObjectFirst:
    case Mode::KeyStart:
    case Mode::AfterKey:
    case Mode::AfterValue:
    case Mode::Done:
      return true;
    default:
      return false;
  }
}

bool JsonPrefix::close_value() {
  mode_ = stack_.empty() ? Mode::Done : Mode::AfterValue;
  return true;
}

bool JsonPrefix::close_container() {
  stack_.pop_back();
  return close_value();
}

bool JsonPrefix::start_value(uint8_t c) {
  if (c == '{' || c == '[') {
    if (static_cast<int>(stack_.size()) >= kMaxDepth) return false;
    stack_.push_back(static_cast<char>(c));
    mode_ = c == '{' ? Mode::ObjectFirst : Mode::ArrayFirst;
    return true;
  }
  if (c == '"') {
    key_ = false;
    mode_ = Mode::String;
    return true;
  }
  if (c == '-' || is_digit(c)) {
    mode_ = Mode::Number;
    number_ = c == '-' ? NumberPart::Minus : c == '0' ? NumberPart::Zero : NumberPart::Int;
    number_length_ = 1;
    exponent_digits_ = 0;
    return true;
  }
  literal_ = c == 't' ? "true" : c == 'f' ? "false" : c == 'n' ? "null" : nullptr;
  if (!literal_) return false;
  literal_at_ = 1;
  mode_ = Mode::Literal;
  return true;
}

// Whether c continues the number. A part that still needs a digit (after '-', '.', 'e',
// the exponent's sign) is entered only with room left for that digit.
bool JsonPrefix::number(uint8_t c) {
  const int room = kMaxNumberLength - number_length_;
  const auto to = [&](NumberPart part, int needs) {
    if (room < needs) return false;
    number_ = part;
    ++number_length_;
    return true;
  };
  const bool exp = c == 'e' || c == 'E';
  switch (number_) {
    case NumberPart::Minus:
      return c == '0' ? to(NumberPart::Zero, 1) : is_digit(c) ? to(NumberPart::Int, 1) : false;
    case NumberPart::Zero:
      return c == '.' ? to(NumberPart::Dot, 2) : exp ? to(NumberPart::Exp, 2) : false;
    case NumberPart::Int:
      return is_digit(c) ? to(NumberPart::Int, 1) : c == '.' ? to(NumberPart::Dot, 2) : exp ? to(NumberPart::Exp, 2) : false;
    case NumberPart::Dot:
      return is_digit(c) && to(NumberPart::Frac, 1);
    case NumberPart::Frac:
      return is_digit(c) ? to(NumberPart::Frac, 1) : exp ? to(NumberPart::Exp, 2) : false;
    case NumberPart::Exp:
      if (c == '+' || c == '-') return to(NumberPart::ExpSign, 2);
      if (!is_digit(c)) return false;
      ++exponent_digits_;
      return to(NumberPart::ExpDigits, 1);
    case NumberPart::ExpSign:
    case NumberPart::ExpDigits:
      if (!is_digit(c) || exponent_digits_ >= kMaxExponentDigits) return false;
      ++exponent_digits_;
      return to(NumberPart::ExpDigits, 1);
  }
  return false;
}

bool JsonPrefix::step(uint8_t c) {
  if (!is_whitespace(c)) whitespace_ = line_breaks_ = 0;
  switch (mode_) {
    case Mode::String:
      if (pending_utf8_) {
        if (c < utf8_low_ || c > utf8_high_) return false;
        --pending_utf8_;
        utf8_low_ = 0x80, utf8_high_ = 0xBF;
        return true;
      }
      if (low_surrogate_ && c != '\\') return false;  // a high surrogate's \u must follow
      if (c == '"') {
        if (!key_) return close_value();
        mode_ = Mode::AfterKey;
        return true;
      }
      if (c == '\\') {
        mode_ = Mode::Escape;
        return true;
      }
      if (c < 0x20) return false;  // control characters must be escaped
      if (c < 0x80) return true;
      // Well-formed UTF-8 (Unicode's table 3-7): no overlong forms, no surrogates,
      // nothing past U+10FFFF; the lead byte narrows its first continuation byte.
      if (c >= 0xC2 && c <= 0xDF) pending_utf8_ = 1;
      else if (c >= 0xE0 && c <= 0xEF) pending_utf8_ = 2;
      else if (c >= 0xF0 && c <= 0xF4) pending_utf8_ = 3;
      else return false;
      utf8_low_ = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
      utf8_high_ = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
      return true;
    case Mode::Escape:
      if (c == 'u') {
        mode_ = Mode::Unicode;
        hex_left_ = 4;
        code_unit_ = 0;
        return true;
      }
      if (low_surrogate_) return false;
      if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' && c != 't') return false;
      mode_ = Mode::String;
      return true;
    case Mode::Unicode: {
      if (!is_hex(c)) return false;
      const int digit = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
      code_unit_ = static_cast<uint16_t>(code_unit_ << 4 | digit);
      // Escaped surrogates come in pairs, high then low, as parsers that decode them
      // to UTF-8 (nlohmann, Rust's serde) require. Decided on the first two digits.
      if (hex_left_ == 3) {
        const bool high = (code_unit_ & 0xFC) == 0xD8, low = (code_unit_ & 0xFC) == 0xDC;
        if (low != low_surrogate_) return false;
        low_surrogate_ = high;
      }
      if (--hex_left_ == 0) mode_ = Mode::String;
      return true;
    }
    case Mode::Literal:
      if (c != static_cast<uint8_t>(literal_[literal_at_])) return false;
      if (literal_[++literal_at_] == '\0') return close_value();
      return true;
    case Mode::Number:
      if (number(c)) return true;
      if (number_ == NumberPart::Minus || number_ == NumberPart::Dot || number_ == NumberPart::Exp ||
          number_ == NumberPart::ExpSign)
        return false;
      close_value();  // c ends the number: it must continue what contains it
      return step(c);
    default:
      break;
  }
  if (is_whitespace(c)) {
    if (!whitespace_allowed()) return false;
    if (is_line_break(c)) {
      // One line break per run: \n, \r\n, or a lone \r.
      const uint8_t bit = c == '\n' ? 1 : 2;
      if ((line_breaks_ & bit) || (c == '\r' && (line_breaks_ & 1))) return false;
      line_breaks_ |= bit;
    } else {
      if (whitespace_ >= kMaxWhitespace) return false;
      ++whitespace_;
    }
    return true;
  }
  switch (mode_) {
    case Mode::Start:
      return c == '{' && start_value(c);
    case Mode::ObjectFirst:
      if (c == '}') return close_container();
      [[fallthrough]];
    case Mode::KeyStart:
      if (c != '"') return false;
      key_ = true;
      mode_ = Mode::String;
      return true;
    case Mode::AfterKey:
      if (c != ':') return false;
      mode_ = Mode::ValueStart;
      return true;
    case Mode::ArrayFirst:
      if (c == ']') return close_container();
      return start_value(c);
    case Mode::ValueStart:
      return start_value(c);
    case Mode::AfterValue:
      if (c == ',') {
        mode_ = top() == '{' ? Mode::KeyStart : Mode::ValueStart;
        return true;
      }
      if ((c == '}' && top() == '{') || (c == ']' && top() == '[')) return close_container();
      return false;
    default:
      return false;
  }
}

}  // namespace qrun
