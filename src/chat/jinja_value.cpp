#include "src/chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace qrun::jinja {

int nesting_of(const Value& child) { return child.is_namespace ? 1 : child.depth; }

void check_nesting(int depth) {
  if (depth > kMaxNesting)
    throw ValueLimitError("lists and dicts nested more than the limit of " + std::to_string(kMaxNesting) + " levels");
}

namespace {

[[noreturn]] void too_deep() {
  throw ValueLimitError("value nested more than the limit of " + std::to_string(kMaxNesting) +
                        " levels to print (or a namespace that contains itself)");
}

void check_size(const std::string& s) {
  if (s.size() > kMaxStringBytes)
    throw ValueLimitError("string longer than the limit of " + std::to_string(kMaxStringBytes) + " bytes");
}

void append_repr(std::string& r, const Value& v, int depth);

void append_str(std::string& r, const Value& v, int depth) {
  switch (v.t) {
    case T::Undefined: return;
    case T::None: r += "None"; break;
    case T::Bool: r += v.b ? "True" : "False"; break;
    case T::Int: r += std::to_string(v.i); break;
    case T::Float: r += py_float(v.f); break;
    case T::Str: r += v.s; break;
    default: append_repr(r, v, depth); return;
  }
  check_size(r);
}

// Python's repr(), so printing a list or dict matches what Jinja would print.
void append_repr(std::string& r, const Value& v, int depth) {
  if (depth > kMaxNesting) too_deep();
  if (v.t == T::Str) {
    const char q = v.s.find('\'') != std::string::npos && v.s.find('"') == std::string::npos ? '"' : '\'';
    r += q;
    for (char c : v.s) {
      if (c == '\\' || c == q) r += '\\', r += c;
      else if (c == '\n') r += "\\n";
      else if (c == '\t') r += "\\t";
      else if (c == '\r') r += "\\r";
      else r += c;
    }
    r += q;
  } else if (v.t == T::List) {
    r += '[';
    bool first = true;
    for (const Value& x : *v.list) {
      if (!first) r += ", ";
      first = false;
      append_repr(r, x, depth + 1);
    }
    r += ']';
  } else if (v.t == T::Dict) {
    r += '{';
    bool first = true;
    for (const auto& [k, x] : *v.dict) {
      if (!first) r += ", ";
      first = false;
      append_repr(r, Value::str(k), depth + 1);
      r += ": ";
      append_repr(r, x, depth + 1);
    }
    r += '}';
  } else {
    append_str(r, v, depth);
    return;
  }
  check_size(r);
}

// transformers' tojson: json.dumps(x, ensure_ascii=False) with its default separators,
// or as `style` says.
void append_json_string(std::string& r, const std::string& s, bool ensure_ascii) {
  r += '"';
  const auto escape = [&](uint32_t unit) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", unit);
    r += buf;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') r += '\\', r += static_cast<char>(c);
    else if (c == '\n') r += "\\n";
    else if (c == '\r') r += "\\r";
    else if (c == '\t') r += "\\t";
    else if (c == '\b') r += "\\b";
    else if (c == '\f') r += "\\f";
    else if (c < 0x20 || (ensure_ascii && c == 0x7f)) escape(c);
    else if (c < 0x80 || !ensure_ascii) r += static_cast<char>(c);
    else {  // a UTF-8 sequence as Python's code point, UTF-16 units above U+FFFF
      const int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
      uint32_t cp = n == 3 ? c & 0x07 : n == 2 ? c & 0x0F : c & 0x1F;
      int k = 0;
      for (; k < n && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F);
      if (n == 0 || k < n) cp = 0xFFFD;  // not UTF-8: what Python's decode would replace
      if (cp >= 0x10000) {
        escape(0xD800 + ((cp - 0x10000) >> 10));
        escape(0xDC00 + ((cp - 0x10000) & 0x3FF));
      } else {
        escape(cp);
      }
    }
  }
  r += '"';
}

void append_json(std::string& r, const Value& v, const JsonStyle& style, int depth) {
  if (depth > kMaxNesting) too_deep();
  // Before each item: the item separator (after the first), then with an indent a line
  // break and the item's depth in spaces.
  const auto item_start = [&](bool first, int level) {
    if (!first) r += style.item_separator;
    if (style.indent >= 0) {
      r += '\n';
      r.append(static_cast<size_t>(style.indent) * level, ' ');
    }
    check_size(r);
  };
  switch (v.t) {
    case T::Bool: r += v.b ? "true" : "false"; break;
    case T::Int: r += std::to_string(v.i); break;
    case T::Float: r += std::isfinite(v.f) ? py_float(v.f) : v.f != v.f ? "NaN" : v.f > 0 ? "Infinity" : "-Infinity"; break;
    case T::Str: append_json_string(r, v.s, style.ensure_ascii); break;
    case T::List: {
      r += '[';
      for (size_t k = 0; k < v.list->size(); ++k) {
        item_start(k == 0, depth + 1);
        append_json(r, (*v.list)[k], style, depth + 1);
      }
      if (!v.list->empty()) item_start(true, depth);
      r += ']';
      break;
    }
    case T::Dict: {
      std::vector<const Dict::Entry*> items;
      for (const auto& item : *v.dict) items.push_back(&item);
      if (style.sort_keys)
        std::stable_sort(items.begin(), items.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
      r += '{';
      for (size_t k = 0; k < items.size(); ++k) {
        item_start(k == 0, depth + 1);
        append_json_string(r, items[k]->first, style.ensure_ascii);
        r += style.key_separator;
        append_json(r, items[k]->second, style, depth + 1);
      }
      if (!items.empty()) item_start(true, depth);
      r += '}';
      break;
    }
    default: r += "null"; break;
  }
  check_size(r);
}

bool equal_at(const Value& a, const Value& b, Steps& steps, int depth) {
  if (depth > kMaxNesting) too_deep();
  steps.charge(1);
  auto num = [](const Value& v) { return v.t == T::Int || v.t == T::Bool; };
  if (num(a) && num(b)) return (a.t == T::Int ? a.i : a.b) == (b.t == T::Int ? b.i : b.b);
  auto real = [](const Value& v) { return v.t == T::Float ? v.f : v.t == T::Int ? double(v.i) : double(v.b); };
  if ((a.t == T::Float && (num(b) || b.t == T::Float)) || (b.t == T::Float && num(a))) return real(a) == real(b);
  if (a.t != b.t) return false;
  switch (a.t) {
    case T::Str: return a.s == b.s;
    case T::List:
      return std::equal(a.list->begin(), a.list->end(), b.list->begin(), b.list->end(),
                        [&](const Value& x, const Value& y) { return equal_at(x, y, steps, depth + 1); });
    case T::Dict:  // order-insensitive, as in Python
      return a.dict->size() == b.dict->size() && std::all_of(a.dict->begin(), a.dict->end(), [&](const auto& x) {
               const auto f = b.dict->find(x.first);
               return f != b.dict->end() && equal_at(x.second, f->second, steps, depth + 1);
             });
    default: return true;
  }
}

}  // namespace

const char* type_name(const Value& v) {
  static const char* names[] = {"undefined", "none", "boolean", "integer", "string", "list", "mapping", "float"};
  return names[static_cast<int>(v.t)];
}

bool truthy(const Value& v) {
  switch (v.t) {
    case T::Bool: return v.b;
    case T::Int: return v.i != 0;
    case T::Float: return v.f != 0;
    case T::Str: return !v.s.empty();
    case T::List: return !v.list->empty();
    case T::Dict: return !v.dict->empty();
    default: return false;
  }
}

// Python's str(): what {{ x }} prints (an undefined value prints nothing, as in Jinja).
std::string to_str(const Value& v) {
  if (v.t == T::Str) return v.s;
  std::string r;
  append_str(r, v, 0);
  return r;
}

std::string repr(const Value& v) {
  std::string r;
  append_repr(r, v, 0);
  return r;
}

std::string py_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[40];
  const auto end = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific).ptr;  // shortest: -1.25e+01
  const std::string sci(buf, end);
  const size_t e = sci.find('e');
  const int exp = std::atoi(sci.c_str() + e + 1);
  const bool negative = sci[0] == '-';
  std::string digits;
  for (size_t k = negative; k < e; ++k)
    if (sci[k] != '.') digits += sci[k];
  std::string r = negative ? "-" : "";
  if (exp < -4 || exp >= 16) {  // Python's repr switches to an exponent outside [1e-4, 1e16)
    r += digits.substr(0, 1);
    if (digits.size() > 1) r += "." + digits.substr(1);
    char tail[8];
    std::snprintf(tail, sizeof tail, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return r + tail;
  }
  if (exp < 0) return r + "0." + std::string(-exp - 1, '0') + digits;
  const size_t whole = static_cast<size_t>(exp) + 1;
  if (digits.size() <= whole) return r + digits + std::string(whole - digits.size(), '0') + ".0";
  return r + digits.substr(0, whole) + "." + digits.substr(whole);
}

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string r;
  append_json(r, v, style, 0);
  return r;
}

std::string to_json(const Value& v) { return to_json(v, JsonStyle{}); }

// Python indexes strings by code point; splitting into UTF-8 sequences keeps `s[-1]`,
// `s[::-1]` and `s|length` from cutting a character in half.
std::vector<size_t> utf8_starts(const std::string& s) {
  std::vector<size_t> out;
  for (size_t i = 0; i < s.size();) {
    out.push_back(i);
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    i += std::min(n, s.size() - i);
  }
  return out;
}

List utf8_chars(const std::string& s) {
  const std::vector<size_t> starts = utf8_starts(s);
  List out;
  out.reserve(starts.size());
  for (size_t k = 0; k < starts.size(); ++k) {
    const size_t end = k + 1 < starts.size() ? starts[k + 1] : s.size();
    out.push_back(Value::str(s.substr(starts[k], end - starts[k])));
  }
  return out;
}

bool equal(const Value& a, const Value& b, Steps& steps) { return equal_at(a, b, steps, 0); }

std::string py_strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t a = 0, b = s.size();
  while (left && a < b && chars.find(s[a]) != std::string::npos) ++a;
  while (right && b > a && chars.find(s[b - 1]) != std::string::npos) --b;
  return s.substr(a, b - a);
}

}  // namespace qrun::jinja
