#include "src/jinja_value.h"

#include <cstdio>

namespace qrun::jinja {

const char* type_name(const Value& v) {
  static const char* names[] = {"undefined", "none", "boolean", "integer", "string", "list", "mapping"};
  return names[static_cast<int>(v.t)];
}

bool truthy(const Value& v) {
  switch (v.t) {
    case T::Bool: return v.b;
    case T::Int: return v.i != 0;
    case T::Str: return !v.s.empty();
    case T::List: return !v.list->empty();
    case T::Dict: return !v.dict->empty();
    default: return false;
  }
}

// Python's str(): what {{ x }} prints (an undefined value prints nothing, as in Jinja).
std::string to_str(const Value& v) {
  switch (v.t) {
    case T::Undefined: return "";
    case T::None: return "None";
    case T::Bool: return v.b ? "True" : "False";
    case T::Int: return std::to_string(v.i);
    case T::Str: return v.s;
    default: return repr(v);
  }
}

// Python's repr(), so printing a list or dict matches what Jinja would print.
std::string repr(const Value& v) {
  if (v.t == T::Str) {
    const char q = v.s.find('\'') != std::string::npos && v.s.find('"') == std::string::npos ? '"' : '\'';
    std::string r(1, q);
    for (char c : v.s) {
      if (c == '\\' || c == q) r += '\\', r += c;
      else if (c == '\n') r += "\\n";
      else if (c == '\t') r += "\\t";
      else if (c == '\r') r += "\\r";
      else r += c;
    }
    return r + q;
  }
  std::string r;
  if (v.t == T::List) {
    for (const Value& x : *v.list) r += (r.empty() ? "" : ", ") + repr(x);
    return "[" + r + "]";
  }
  if (v.t == T::Dict) {
    for (const auto& [k, x] : *v.dict) r += (r.empty() ? "" : ", ") + repr(Value::str(k)) + ": " + repr(x);
    return "{" + r + "}";
  }
  return to_str(v);
}

// transformers' tojson: json.dumps(x, ensure_ascii=False) with its default separators.
std::string to_json(const Value& v) {
  switch (v.t) {
    case T::Bool: return v.b ? "true" : "false";
    case T::Int: return std::to_string(v.i);
    case T::Str: {
      std::string r = "\"";
      for (unsigned char c : v.s) {
        if (c == '"' || c == '\\') r += '\\', r += static_cast<char>(c);
        else if (c == '\n') r += "\\n";
        else if (c == '\r') r += "\\r";
        else if (c == '\t') r += "\\t";
        else if (c < 0x20) { char buf[8]; std::snprintf(buf, sizeof buf, "\\u%04x", c); r += buf; }
        else r += static_cast<char>(c);
      }
      return r + "\"";
    }
    case T::List: {
      std::string r;
      for (const Value& x : *v.list) r += (r.empty() ? "" : ", ") + to_json(x);
      return "[" + r + "]";
    }
    case T::Dict: {
      std::string r;
      for (const auto& [k, x] : *v.dict) r += (r.empty() ? "" : ", ") + to_json(Value::str(k)) + ": " + to_json(x);
      return "{" + r + "}";
    }
    default: return "null";
  }
}

// Python indexes strings by code point; splitting into UTF-8 sequences keeps `s[-1]`,
// `s[::-1]` and `s|length` from cutting a character in half.
List utf8_chars(const std::string& s) {
  List out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    n = std::min(n, s.size() - i);
    out.push_back(Value::str(s.substr(i, n)));
    i += n;
  }
  return out;
}

bool equal(const Value& a, const Value& b) {
  auto num = [](const Value& v) { return v.t == T::Int || v.t == T::Bool; };
  if (num(a) && num(b)) return (a.t == T::Int ? a.i : a.b) == (b.t == T::Int ? b.i : b.b);
  if (a.t != b.t) return false;
  switch (a.t) {
    case T::Str: return a.s == b.s;
    case T::List: return std::equal(a.list->begin(), a.list->end(), b.list->begin(), b.list->end(), equal);
    case T::Dict:  // order-insensitive, as in Python
      return a.dict->size() == b.dict->size() && std::all_of(a.dict->begin(), a.dict->end(), [&](const auto& x) {
               const auto f = b.dict->find(x.first);
               return f != b.dict->end() && equal(x.second, f->second);
             });
    default: return true;
  }
}

std::string py_strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t a = 0, b = s.size();
  while (left && a < b && chars.find(s[a]) != std::string::npos) ++a;
  while (right && b > a && chars.find(s[b - 1]) != std::string::npos) --b;
  return s.substr(a, b - a);
}

}  // namespace qrun::jinja
