// Python-like values for the chat-template interpreter (src/chat/chat_template.cpp): what
// Jinja expressions evaluate to, with Python's printing, equality and truthiness.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace qrun::jinja {

// Templates come from model files, that is from strangers: what one may make the
// renderer do is bounded, and each limit names itself in the error when exceeded.
inline constexpr int kMaxNesting = 64;             // nested blocks; nested lists/dicts in a value
inline constexpr int kMaxExprDepth = 256;          // operators, calls and filters nested in one expression
inline constexpr size_t kMaxStringBytes = 8u << 20;  // any one string the template builds
inline constexpr size_t kMaxOutputBytes = 8u << 20;  // the rendered text
// Statements, expressions and loop iterations run, plus one per element copied and per
// 64 bytes of string copied: far above what a real template needs for a long
// conversation (Qwen3's or Llama 3's on 2,000 turns of 2 KB: 6 * 10^5), and reached within
// about a second.
inline constexpr uint64_t kMaxSteps = 10'000'000;

// A limit above was exceeded while building or printing a value; the renderer turns it
// into a qrun::Error naming the place in the template.
class ValueLimitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The renderer's work counter (kMaxSteps), also charged by comparisons of values.
struct Steps {
  uint64_t used = 0;
  void charge(uint64_t n) {
    used += n;
    if (used > kMaxSteps)
      throw ValueLimitError("template ran more than the limit of " + std::to_string(kMaxSteps) +
                            " steps (a loop that does not end, or too much work)");
  }
  void charge_bytes(size_t n) { charge(1 + n / 64); }
};

struct Value;
class Dict;
using List = std::vector<Value>;

struct Value {
  // Float comes only from JSON given to a template (tools' schemas, call arguments): it
  // prints and compares as Python's float; arithmetic on it is not supported.
  enum class T { Undefined, None, Bool, Int, Str, List, Dict, Float };
  T t = T::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // shared: `set ns.x` must change the namespace every alias sees
  bool is_namespace = false;
  // Lists and dicts nested inside (0 for a scalar), at most kMaxNesting. A namespace
  // counts as 1 whatever it holds: it is the one mutable value, so it can come to hold
  // deep values, or itself; the renderer keeps every namespace alive until it ends, so
  // freeing a value never recurses through one, and printing is depth-limited.
  int depth = 0;

  static Value none() { Value v; v.t = T::None; return v; }
  static Value boolean(bool x) { Value v; v.t = T::Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.t = T::Int; v.i = x; return v; }
  static Value str(std::string x) { Value v; v.t = T::Str; v.s = std::move(x); return v; }
  static Value real(double x) { Value v; v.t = T::Float; v.f = x; return v; }
  static Value of(List x);   // throw ValueLimitError past kMaxNesting
  static Value of(Dict x);
};
using T = Value::T;

// Python dicts keep insertion order, and it shows in tojson, items() and printing, so this
// is a small ordered map (chat-template dicts hold a handful of keys; lookups are linear).
class Dict {
 public:
  using Entry = std::pair<std::string, Value>;
  Dict() = default;
  Dict(std::initializer_list<Entry> init) {
    for (const Entry& e : init) (*this)[e.first] = e.second;
  }
  Value& operator[](const std::string& key) {
    for (Entry& e : items_)
      if (e.first == key) return e.second;
    return items_.emplace_back(key, Value{}).second;
  }
  std::vector<Entry>::const_iterator find(const std::string& key) const {
    return std::find_if(items_.begin(), items_.end(), [&](const Entry& e) { return e.first == key; });
  }
  bool count(const std::string& key) const { return find(key) != end(); }
  size_t size() const { return items_.size(); }
  void clear() { items_.clear(); }
  bool empty() const { return items_.empty(); }
  std::vector<Entry>::const_iterator begin() const { return items_.begin(); }
  std::vector<Entry>::const_iterator end() const { return items_.end(); }

 private:
  std::vector<Entry> items_;
};

int nesting_of(const Value& child);  // what a child adds to its container's depth
void check_nesting(int depth);       // throws ValueLimitError past kMaxNesting

inline Value Value::of(List x) {
  int d = 0;
  for (const Value& e : x) d = std::max(d, nesting_of(e));
  check_nesting(d + 1);
  Value v;
  v.t = T::List;
  v.list = std::make_shared<List>(std::move(x));
  v.depth = d + 1;
  return v;
}
inline Value Value::of(Dict x) {
  int d = 0;
  for (const auto& e : x) d = std::max(d, nesting_of(e.second));
  check_nesting(d + 1);
  Value v;
  v.t = T::Dict;
  v.dict = std::make_shared<Dict>(std::move(x));
  v.depth = d + 1;
  return v;
}

// Printing throws ValueLimitError for a value nested more than kMaxNesting levels (a
// namespace that holds itself is infinitely deep) or a result over kMaxStringBytes.
const char* type_name(const Value& v);
bool truthy(const Value& v);
std::string to_str(const Value& v);   // Python's str(): what {{ x }} prints
std::string repr(const Value& v);     // Python's repr()
std::string to_json(const Value& v);  // transformers' tojson
// tojson's keyword arguments, as transformers passes them to json.dumps: indent (< 0:
// none; with one, items go on lines of their own), sort_keys, ensure_ascii (\uXXXX for
// what is not ASCII) and separators (item, key).
struct JsonStyle {
  int indent = -1;
  bool sort_keys = false, ensure_ascii = false;
  std::string item_separator = ", ", key_separator = ": ";
};
std::string to_json(const Value& v, const JsonStyle& style);
std::string py_float(double x);       // Python's repr() of a float: 1.0, 0.0001, 1e-05, 1e+16
List utf8_chars(const std::string& s);
// Byte offset where each UTF-8 character of s starts (as utf8_chars splits it).
std::vector<size_t> utf8_starts(const std::string& s);
// Python ==; each value visited costs one step.
bool equal(const Value& a, const Value& b, Steps& steps);
std::string py_strip(const std::string& s, const std::string& chars, bool left, bool right);
inline const std::string kSpace = " \t\n\r\v\f";

}  // namespace qrun::jinja
