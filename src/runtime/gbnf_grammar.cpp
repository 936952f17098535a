#include "src/runtime/gbnf_grammar.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "qrun/error.h"

namespace qrun {

namespace {

using Sequence = Grammar::Sequence;

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kMaxRepeat = 1000;  // {m,n} past this would unroll into huge grammars
constexpr int kMaxNesting = 256;       // parentheses: the parser recurses into them

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | cp >> 6);
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | cp >> 12);
    s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | cp >> 18);
    s += static_cast<char>(0x80 | (cp >> 12 & 0x3F));
    s += static_cast<char>(0x80 | (cp >> 6 & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// The code points lo..hi (surrogates left out) as sequences of byte ranges, one per
// alternative: split where the UTF-8 length changes, then wherever a continuation byte
// would not run over its whole range, until every byte of a sequence ranges on its own.
void utf8_ranges(uint32_t lo, uint32_t hi, std::vector<Sequence>& out) {
  for (const uint32_t last : {0x7Fu, 0x7FFu, 0xFFFFu})
    if (lo <= last && hi > last) {
      utf8_ranges(lo, last, out);
      utf8_ranges(last + 1, hi, out);
      return;
    }
  if (lo <= 0xDFFF && hi >= 0xD800) {
    if (lo < 0xD800) utf8_ranges(lo, 0xD7FF, out);
    if (hi > 0xDFFF) utf8_ranges(0xE000, hi, out);
    return;
  }
  const size_t n = utf8(lo).size();
  for (size_t i = 1; i < n; ++i) {
    const uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) == (hi & ~m)) continue;
    if ((lo & m) != 0) {
      utf8_ranges(lo, lo | m, out);
      utf8_ranges((lo | m) + 1, hi, out);
      return;
    }
    if ((hi & m) != m) {
      utf8_ranges(lo, (hi & ~m) - 1, out);
      utf8_ranges(hi & ~m, hi, out);
      return;
    }
  }
  const std::string a = utf8(lo), b = utf8(hi);
  Sequence s;
  for (size_t i = 0; i < n; ++i) s.push_back(GrammarElement::bytes(static_cast<uint8_t>(a[i]), static_cast<uint8_t>(b[i])));
  out.push_back(std::move(s));
}

class GbnfParser {
 public:
  explicit GbnfParser(std::string_view text) : src_(text), g_(std::make_shared<Grammar>()) {}

  std::shared_ptr<const Grammar> parse() {
    if (src_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;  // a UTF-8 byte order mark, as some editors save
    skip(true);
    while (!eof()) {
      const size_t at = pos_;
      const std::string name = name_here();
      if (name.empty()) fail(at, "expected a rule name");
      skip(false);
      if (src_.substr(pos_, 3) != "::=") fail(pos_, "expected ::= after \"" + name + "\"");
      pos_ += 3;
      skip(true);
      if (!defined_.insert(name).second) fail(at, "rule \"" + name + "\" is defined twice");
      alternatives(rule_named(name), 0);
      if (!eof() && src_[pos_] != '\n' && src_[pos_] != '\r') fail(pos_, "expected the end of the rule");
      skip(true);
    }
    for (const auto& [name, at] : used_)
      if (!defined_.count(name)) fail(at, "unknown rule \"" + name + "\"");
    if (!defined_.count("root")) fail(pos_, "no rule named root (where the grammar starts)");
    g_->set_root(rules_.at("root"));
    g_->factor();
    g_->check("GBNF grammar");
    return g_;
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& why) const {
    size_t line = 1, column = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') ++line, column = 1;
      else ++column;
    }
    throw Error("GBNF grammar at line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + why);
  }

  bool eof() const { return pos_ >= src_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0'; }

  // Spaces, tabs and # comments; line breaks too where a rule goes on (after ::=, after
  // |, inside parentheses).
  void skip(bool line_breaks) {
    while (!eof()) {
      const char c = src_[pos_];
      if (c == '#') {
        while (!eof() && src_[pos_] != '\n' && src_[pos_] != '\r') ++pos_;
      } else if (c == ' ' || c == '\t' || (line_breaks && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else {
        return;
      }
    }
  }

  std::string name_here() {
    const size_t start = pos_;
    while (!eof() && is_name_char(src_[pos_])) ++pos_;
    return std::string(src_.substr(start, pos_ - start));
  }

  uint32_t rule_named(const std::string& name) {
    const auto it = rules_.find(name);
    if (it != rules_.end()) return it->second;
    return rules_[name] = g_->add_rule(name);
  }

  void alternatives(uint32_t rule, int depth) {
    if (depth > kMaxNesting) fail(pos_, "parentheses nested deeper than " + std::to_string(kMaxNesting));
    for (;;) {
      g_->add_alternative(rule, sequence(depth));
      if (peek() != '|') return;
      ++pos_;
      skip(true);
    }
  }

  Sequence sequence(int depth) {
    const bool nested = depth > 0;
    Sequence seq;
    size_t last = std::string::npos;  // where the element a postfix applies to starts
    while (!eof()) {
      const char c = src_[pos_];
      const size_t start = seq.size();
      if (c == '"') {
        ++pos_;
        while (peek() != '"') {
          if (eof()) fail(pos_, "unterminated \"literal\"");
          for (const char b : utf8(character())) seq.push_back(GrammarElement::byte(static_cast<uint8_t>(b)));
        }
        ++pos_;
      } else if (c == '[') {
        seq.push_back(GrammarElement::rule(char_class()));
      } else if (c == '.') {
        ++pos_;
        seq.push_back(GrammarElement::rule(any_char()));
      } else if (c == '(') {
        const size_t open = pos_++;
        skip(true);
        const uint32_t group = g_->add_rule();
        alternatives(group, depth + 1);
        if (peek() != ')') fail(open, "( without its )");
        ++pos_;
        seq.push_back(GrammarElement::rule(group));
      } else if (is_name_char(c)) {
        const size_t at = pos_;
        const std::string name = name_here();
        used_.emplace(name, at);
        seq.push_back(GrammarElement::rule(rule_named(name)));
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (last == std::string::npos) fail(pos_, std::string("'") + c + "' follows nothing it could repeat");
        repeat(seq, last);
        skip(nested);
        continue;
      } else {
        break;
      }
      last = start;
      skip(nested);
    }
    return seq;
  }

  // One character of a literal or class: an escape or a UTF-8 character of the text.
  uint32_t character() {
    const size_t at = pos_;
    const auto c = static_cast<uint8_t>(src_[pos_++]);
    if (c == '\\') {
      if (eof()) fail(at, "unfinished escape");
      const char e = src_[pos_++];
      const auto hex = [&](int digits) {
        uint32_t v = 0;
        for (int i = 0; i < digits; ++i) {
          const char h = peek();
          const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
          if (d < 0) fail(pos_, std::string("\\") + e + " needs " + std::to_string(digits) + " hex digits");
          v = v << 4 | static_cast<uint32_t>(d);
          ++pos_;
        }
        if (v > kMaxCodePoint || (v >= 0xD800 && v <= 0xDFFF)) fail(at, "escape names no Unicode character");
        return v;
      };
      switch (e) {
        case 'x': return hex(2);
        case 'u': return hex(4);
        case 'U': return hex(8);
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<uint8_t>(e);
        default: fail(at, std::string("unknown escape \\") + e);
      }
    }
    if (c < 0x80) return c;
    // A UTF-8 character of the grammar's text, checked as the JSON lexer checks strings.
    const int more = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
    if (more < 0) fail(at, "not UTF-8");
    uint32_t cp = c & (0x3F >> more);
    for (int i = 0; i < more; ++i) {
      const auto b = static_cast<uint8_t>(peek());
      const uint8_t low = i == 0 && c == 0xE0 ? 0xA0 : i == 0 && c == 0xF0 ? 0x90 : 0x80;
      const uint8_t high = i == 0 && c == 0xED ? 0x9F : i == 0 && c == 0xF4 ? 0x8F : 0xBF;
      if (eof() || b < low || b > high) fail(at, "not UTF-8");
      cp = cp << 6 | (b & 0x3F);
      ++pos_;
    }
    return cp;
  }

  uint32_t char_class() {
    const size_t open = pos_++;
    const bool negated = peek() == '^';
    if (negated) ++pos_;
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    while (peek() != ']') {
      if (eof()) fail(open, "[ without its ]");
      const uint32_t lo = character();
      uint32_t hi = lo;
      if (peek() == '-' && peek(1) != ']' && pos_ + 1 < src_.size()) {
        ++pos_;
        const size_t at = pos_;
        hi = character();
        if (hi < lo) fail(at, "range runs backwards");
      }
      ranges.emplace_back(lo, hi);
    }
    ++pos_;
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (const auto& r : ranges) {
      if (!merged.empty() && r.first <= merged.back().second + 1) merged.back().second = std::max(merged.back().second, r.second);
      else merged.push_back(r);
    }
    if (negated) {
      std::vector<std::pair<uint32_t, uint32_t>> rest;
      uint32_t next = 0;
      for (const auto& [lo, hi] : merged) {
        if (lo > next) rest.emplace_back(next, lo - 1);
        next = hi + 1;
      }
      if (next <= kMaxCodePoint) rest.emplace_back(next, kMaxCodePoint);
      merged = std::move(rest);
    }
    std::vector<Sequence> alternatives;
    for (const auto& [lo, hi] : merged) utf8_ranges(lo, hi, alternatives);
    const uint32_t rule = g_->add_rule();  // no alternatives for [] or [^\x00-\U0010FFFF]: nothing
    for (Sequence& s : alternatives) g_->add_alternative(rule, std::move(s));
    return rule;
  }

  uint32_t any_char() {
    if (any_char_) return *any_char_;
    std::vector<Sequence> alternatives;
    utf8_ranges(0, kMaxCodePoint, alternatives);
    any_char_ = g_->add_rule();
    for (Sequence& s : alternatives) g_->add_alternative(*any_char_, std::move(s));
    return *any_char_;
  }

  uint32_t count() {
    const size_t at = pos_;
    uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9' && v <= kMaxRepeat) v = v * 10 + static_cast<uint64_t>(src_[pos_++] - '0');
    if (pos_ == at) fail(at, "expected a count");
    if (v > kMaxRepeat) fail(at, "counts above " + std::to_string(kMaxRepeat) + " are not supported");
    return static_cast<uint32_t>(v);
  }

  // X* X+ X? X{m} X{m,} X{m,n}: X (the elements from `last` on) m times, then as many
  // optional ones as n allows, or a right-recursive rule for any number.
  void repeat(Sequence& seq, size_t last) {
    const size_t at = pos_;
    uint32_t min = 0, max = kUnbounded;
    const char c = src_[pos_++];
    if (c == '+') min = 1;
    if (c == '?') max = 1;
    if (c == '{') {
      skip(false);
      min = max = count();
      skip(false);
      if (peek() == ',') {
        ++pos_;
        skip(false);
        max = peek() == '}' ? kUnbounded : count();
        skip(false);
      }
      if (peek() != '}') fail(at, "{ without its }");
      ++pos_;
      if (max < min) fail(at, "{m,n} with n below m");
    }
    const Sequence item(seq.begin() + static_cast<std::ptrdiff_t>(last), seq.end());
    seq.resize(last);
    uint32_t x;
    if (item.size() == 1 && item[0].kind == GrammarElement::Kind::Rule) {
      x = item[0].arg;
    } else {
      x = g_->add_rule();
      g_->add_alternative(x, item);
    }
    for (uint32_t i = 0; i < min; ++i) seq.push_back(GrammarElement::rule(x));
    if (max == kUnbounded) {
      const uint32_t more = g_->add_rule();
      g_->add_alternative(more, {GrammarElement::rule(x), GrammarElement::rule(more)});
      g_->add_alternative(more, {});
      seq.push_back(GrammarElement::rule(more));
    } else if (max > min) {
      uint32_t optional = g_->add_rule();  // up to one more
      g_->add_alternative(optional, {});
      g_->add_alternative(optional, {GrammarElement::rule(x)});
      for (uint32_t k = 1; k < max - min; ++k) {
        const uint32_t next = g_->add_rule();
        g_->add_alternative(next, {});
        g_->add_alternative(next, {GrammarElement::rule(x), GrammarElement::rule(optional)});
        optional = next;
      }
      seq.push_back(GrammarElement::rule(optional));
    }
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::shared_ptr<Grammar> g_;
  std::map<std::string, uint32_t> rules_;
  std::map<std::string, size_t> used_;  // where each referred-to rule is first used
  std::set<std::string> defined_;
  std::optional<uint32_t> any_char_;
};

}  // namespace

std::shared_ptr<const Grammar> gbnf_grammar(std::string_view text) { return GbnfParser(text).parse(); }

}  // namespace qrun
