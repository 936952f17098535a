#include "src/runtime/json_prefix.h"

namespace qrun {

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
    string_ = {};
    return true;
  }
  if (number_.start(c)) {
    mode_ = Mode::Number;
    return true;
  }
  literal_ = c == 't' ? "true" : c == 'f' ? "false" : c == 'n' ? "null" : nullptr;
  if (!literal_) return false;
  literal_at_ = 1;
  mode_ = Mode::Literal;
  return true;
}

bool JsonPrefix::step(uint8_t c) {
  if (!JsonSpaceLexer::is_space(c)) space_ = {};
  switch (mode_) {
    case Mode::String:
      switch (string_.step(c)) {
        case JsonStringLexer::Step::Refused:
          return false;
        case JsonStringLexer::Step::Inside:
          return true;
        case JsonStringLexer::Step::Closed:
          if (!key_) return close_value();
          mode_ = Mode::AfterKey;
          return true;
      }
      return false;
    case Mode::Literal:
      if (c != static_cast<uint8_t>(literal_[literal_at_])) return false;
      if (literal_[++literal_at_] == '\0') return close_value();
      return true;
    case Mode::Number:
      if (number_.step(c)) return true;
      if (!number_.can_end()) return false;
      close_value();  // c ends the number: it must continue what contains it
      return step(c);
    default:
      break;
  }
  if (JsonSpaceLexer::is_space(c)) return whitespace_allowed() && space_.step(c);
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
      string_ = {};
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
