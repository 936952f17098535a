#include "src/runtime/json_lexers.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace qrun {

namespace {

bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

}  // namespace

bool JsonStringLexer::start_char(uint32_t max_chars) {
  if (chars_ >= max_chars) return false;
  ++chars_;
  return true;
}

JsonStringLexer::Step JsonStringLexer::step(uint8_t c, uint32_t min_chars, uint32_t max_chars) {
  switch (mode_) {
    case Mode::Body:
      if (pending_utf8_) {
        if (c < utf8_low_ || c > utf8_high_) return Step::Refused;
        --pending_utf8_;
        utf8_low_ = 0x80, utf8_high_ = 0xBF;
        return Step::Inside;
      }
      if (low_surrogate_) {  // a high surrogate's \u must follow; the pair is one character
        if (c != '\\') return Step::Refused;
        mode_ = Mode::Escape;
        return Step::Inside;
      }
      if (c == '"') return chars_ >= min_chars ? Step::Closed : Step::Refused;
      if (c < 0x20) return Step::Refused;  // control characters must be escaped
      if (c == '\\') {
        mode_ = Mode::Escape;
        return start_char(max_chars) ? Step::Inside : Step::Refused;
      }
      if (c >= 0x80) {
        // The lead byte narrows its first continuation byte.
        if (c >= 0xC2 && c <= 0xDF) pending_utf8_ = 1;
        else if (c >= 0xE0 && c <= 0xEF) pending_utf8_ = 2;
        else if (c >= 0xF0 && c <= 0xF4) pending_utf8_ = 3;
        else return Step::Refused;
        utf8_low_ = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
        utf8_high_ = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
      }
      return start_char(max_chars) ? Step::Inside : Step::Refused;
    case Mode::Escape:
      if (c == 'u') {
        mode_ = Mode::Unicode;
        hex_left_ = 4;
        code_unit_ = 0;
        return Step::Inside;
      }
      if (low_surrogate_) return Step::Refused;
      if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' && c != 'r' && c != 't')
        return Step::Refused;
      mode_ = Mode::Body;
      return Step::Inside;
    case Mode::Unicode: {
      if (!is_hex(c)) return Step::Refused;
      const int digit = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
      code_unit_ = static_cast<uint16_t>(code_unit_ << 4 | digit);
      if (hex_left_ == 3) {  // decided on the first two digits
        const bool high = (code_unit_ & 0xFC) == 0xD8, low = (code_unit_ & 0xFC) == 0xDC;
        if (low != low_surrogate_) return Step::Refused;
        low_surrogate_ = high;
      }
      if (--hex_left_ == 0) mode_ = Mode::Body;
      return Step::Inside;
    }
  }
  return Step::Refused;
}

bool JsonNumberLexer::start(uint8_t c) {
  if (c != '-' && !is_digit(c)) return false;
  part_ = c == '-' ? Part::Minus : c == '0' ? Part::Zero : Part::Int;
  length_ = 1;
  exponent_digits_ = 0;
  negative_ = c == '-';
  int_digits_ = negative_ ? 0 : 1;
  magnitude_ = negative_ ? 0 : c - '0';
  text_[0] = static_cast<char>(c);
  return true;
}

// A part that still needs a digit (after '-', '.', 'e', the exponent's sign) is entered
// only with room left for that digit.
bool JsonNumberLexer::to(Part part, int needs) {
  if (kMaxLength - length_ < needs) return false;
  part_ = part;
  ++length_;
  return true;
}

bool JsonNumberLexer::step(uint8_t c, Shape shape) {
  if (!step_part(c, shape)) return false;
  text_[length_ - 1] = static_cast<char>(c);
  return true;
}

bool JsonNumberLexer::step_part(uint8_t c, Shape shape) {
  const bool exp = shape == Shape::Any && (c == 'e' || c == 'E');
  const bool dot = shape != Shape::Integer && c == '.';
  if (is_digit(c) && (part_ == Part::Minus || part_ == Part::Int) && int_digits_ < 21) {
    ++int_digits_;
    magnitude_ = magnitude_ * 10 + (c - '0');
  }
  switch (part_) {
    case Part::Minus:
      return c == '0' ? to(Part::Zero, 1) : is_digit(c) ? to(Part::Int, 1) : false;
    case Part::Zero:
      return dot ? to(Part::Dot, 2) : exp ? to(Part::Exp, 2) : false;
    case Part::Int:
      return is_digit(c) ? to(Part::Int, 1) : dot ? to(Part::Dot, 2) : exp ? to(Part::Exp, 2) : false;
    case Part::Dot:
      return is_digit(c) && to(Part::Frac, 1);
    case Part::Frac:
      return is_digit(c) ? to(Part::Frac, 1) : exp ? to(Part::Exp, 2) : false;
    case Part::Exp:
      if (c == '+' || c == '-') return to(Part::ExpSign, 2);
      if (!is_digit(c)) return false;
      ++exponent_digits_;
      return to(Part::ExpDigits, 1);
    case Part::ExpSign:
    case Part::ExpDigits:
      if (!is_digit(c) || exponent_digits_ >= kMaxExponentDigits) return false;
      ++exponent_digits_;
      return to(Part::ExpDigits, 1);
  }
  return false;
}

bool JsonNumberLexer::can_end() const {
  return part_ == Part::Zero || part_ == Part::Int || part_ == Part::Frac || part_ == Part::ExpDigits;
}

// The integers the digits so far can still become are the magnitude m itself and, with k
// more digits, m * 10^k .. m * 10^k + 10^k - 1 (none after a leading 0); some must lie
// within [low, high]. Past 20 digits nothing fits an int64 bound.
bool JsonNumberLexer::integer_may_reach(int64_t low, int64_t high) const {
  if (int_digits_ > 20) return false;
  const auto meets = [&](__int128 a, __int128 b) {  // magnitudes a..b, with the sign
    const __int128 lo = negative_ ? -b : a, hi = negative_ ? -a : b;
    return lo <= high && hi >= low;
  };
  if (int_digits_ == 0) return meets(1, static_cast<__int128>(1) << 64);  // "-": any negative
  if (part_ == Part::Zero) return meets(0, 0);
  __int128 first = magnitude_, span = 1;
  for (int digits = int_digits_; digits <= 20; ++digits, first *= 10, span *= 10)
    if (meets(first, first + span - 1)) return true;
  return false;
}

bool JsonNumberLexer::integer_within(int64_t low, int64_t high) const {
  if (int_digits_ == 0 || int_digits_ > 20) return false;
  const __int128 v = negative_ ? -magnitude_ : magnitude_;
  return v >= low && v <= high;
}

std::string JsonNumberLexer::unsigned_text() const {
  return std::string(text_.data() + negative_, static_cast<size_t>(length_ - negative_));
}

long double JsonNumberLexer::magnitude() const { return std::strtold(unsigned_text().c_str(), nullptr); }

namespace {

// The decimal one unit of the last digit above `digits` ("0.009" -> "0.010"), exact
// where v + 10^-f in long double would round.
std::string one_unit_up(std::string digits) {
  for (size_t i = digits.size(); i-- > 0;) {
    if (digits[i] == '.') continue;
    if (digits[i] != '9') {
      ++digits[i];
      return digits;
    }
    digits[i] = '0';
  }
  return "1" + digits;
}

}  // namespace

// What more digits can make of the decimal so far: before the point, with k more integer
// digits, [m * 10^k, (m + 1) * 10^k); after it, [v, v + 10^-f) for its f digits. Some
// value of one of them must lie within [low, high] as written (the interval's end is
// never reached); a number that cannot grow must be within.
bool JsonNumberLexer::decimal_may_reach(long double low, long double high) const {
  if (length_ >= kMaxLength) return can_end() && decimal_within(low, high);
  const auto meets = [&](long double a, long double b) {  // magnitudes [a, b), with the sign
    return negative_ ? (-a >= low && -b < high) : (a <= high && b > low);
  };
  if (part_ == Part::Minus) return low <= 0;  // "-": any value up to -0
  if (part_ == Part::Zero) return meets(0, 1);
  if (part_ == Part::Dot || part_ == Part::Frac)
    return meets(magnitude(), std::strtold(one_unit_up(unsigned_text()).c_str(), nullptr));
  if (part_ != Part::Int || int_digits_ > 20) return false;
  const long double m = static_cast<long double>(magnitude_);
  long double scale = 1;
  for (int digits = int_digits_; digits < kMaxLength; ++digits, scale *= 10)
    if (meets(m * scale, (m + 1) * scale)) return true;
  return false;
}

bool JsonNumberLexer::decimal_within(long double low, long double high) const {
  if (int_digits_ == 0 || int_digits_ > 20) return false;
  const long double v = negative_ ? -magnitude() : magnitude();
  return v >= low && v <= high;
}

bool JsonSpaceLexer::step(uint8_t c) {
  if (c == '\n' || c == '\r') {
    const uint8_t bit = c == '\n' ? 1 : 2;
    if ((line_breaks_ & bit) || (c == '\r' && (line_breaks_ & 1))) return false;
    line_breaks_ |= bit;
    return true;
  }
  if (spaces_ >= kMaxSpaces) return false;
  ++spaces_;
  return true;
}

}  // namespace qrun
