// Python-like values for the chat-template interpreter (src/chat_template.cpp): what
// Jinja expressions evaluate to, with Python's printing, equality and truthiness.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace qrun::jinja {

struct Value;
class Dict;
using List = std::vector<Value>;

struct Value {
  enum class T { Undefined, None, Bool, Int, Str, List, Dict };
  T t = T::Undefined;
  bool b = false;
  int64_t i = 0;
  std::string s;
  std::shared_ptr<List> list;
  std::shared_ptr<Dict> dict;  // shared: `set ns.x` must change the namespace every alias sees
  bool is_namespace = false;

  static Value none() { Value v; v.t = T::None; return v; }
  static Value boolean(bool x) { Value v; v.t = T::Bool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.t = T::Int; v.i = x; return v; }
  static Value str(std::string x) { Value v; v.t = T::Str; v.s = std::move(x); return v; }
  static Value of(List x) { Value v; v.t = T::List; v.list = std::make_shared<List>(std::move(x)); return v; }
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
  bool empty() const { return items_.empty(); }
  std::vector<Entry>::const_iterator begin() const { return items_.begin(); }
  std::vector<Entry>::const_iterator end() const { return items_.end(); }

 private:
  std::vector<Entry> items_;
};

inline Value Value::of(Dict x) { Value v; v.t = T::Dict; v.dict = std::make_shared<Dict>(std::move(x)); return v; }

const char* type_name(const Value& v);
bool truthy(const Value& v);
std::string to_str(const Value& v);   // Python's str(): what {{ x }} prints
std::string repr(const Value& v);     // Python's repr()
std::string to_json(const Value& v);  // transformers' tojson
List utf8_chars(const std::string& s);
bool equal(const Value& a, const Value& b);
std::string py_strip(const std::string& s, const std::string& chars, bool left, bool right);
inline const std::string kSpace = " \t\n\r\v\f";

}  // namespace qrun::jinja
