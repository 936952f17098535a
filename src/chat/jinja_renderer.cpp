#include "src/chat/jinja_renderer.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <map>
#include <utility>

namespace qrun::jinja {

namespace {

enum class Flow { Normal, Break, Continue };

// The renderer's recursion: statements within statements and expressions within
// expressions, both bounded by the parser; this is the backstop.
constexpr int kMaxRenderDepth = kMaxNesting + kMaxExprDepth + 16;

class Renderer {
 public:
  Renderer(const Source& src, Dict globals) : src_(src) { scopes_.push_back(std::move(globals)); }
  // Namespaces may hold each other (or themselves): emptying them all breaks such cycles,
  // and as every namespace is held here until now, no value freed during rendering
  // recursed through one.
  ~Renderer() {
    for (const auto& ns : namespaces_) ns->clear();
  }
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  std::string out;

  Flow run(const Body& body) {
    for (const Stmt& s : body)
      if (Flow f = exec(s); f != Flow::Normal) return f;
    return Flow::Normal;
  }

 private:
  struct Nest {
    Nest(Renderer& r, size_t pos) : r_(r) {
      if (++r_.depth_ > kMaxRenderDepth)
        r_.src_.fail(pos, "template evaluation nested more than the limit of " + std::to_string(kMaxRenderDepth) +
                              " levels");
    }
    ~Nest() { --r_.depth_; }
    Renderer& r_;
  };

  void emit(const std::string& text, size_t pos) {
    if (text.size() > kMaxOutputBytes - out.size())
      src_.fail(pos, "rendered output longer than the limit of " + std::to_string(kMaxOutputBytes) + " bytes");
    out += text;
  }
  void check_string(size_t bytes, size_t pos) {
    if (bytes > kMaxStringBytes)
      src_.fail(pos, "string longer than the limit of " + std::to_string(kMaxStringBytes) + " bytes");
  }
  // Elements of a list copied: one step each, plus the bytes of the strings among them.
  void charge_copy(const List& l) {
    uint64_t bytes = 0;
    for (const Value& v : l) bytes += v.s.size();
    steps_.charge(2 * l.size() + bytes / 64);
  }

  // Statements and expressions run inside a guard that turns ValueLimitError (a limit
  // hit inside a value operation) into an error naming this place in the template.
  Flow exec(const Stmt& s) {
    const Nest nest(*this, s.pos);
    try {
      steps_.charge(1);
      return exec_inner(s);
    } catch (const ValueLimitError& e) {
      src_.fail(s.pos, e.what());
    }
  }

  Value eval(const Expr& e) {
    const Nest nest(*this, e.pos);
    try {
      Value v = eval_inner(e);
      steps_.charge_bytes(v.s.size());
      return v;
    } catch (const ValueLimitError& x) {
      src_.fail(e.pos, x.what());
    }
  }

  Flow exec_inner(const Stmt& s) {
    switch (s.k) {
      case Stmt::K::Text: emit(s.text, s.pos); return Flow::Normal;
      case Stmt::K::Out: {
        const std::string text = to_str(eval(*s.expr));
        steps_.charge_bytes(text.size());
        emit(text, s.pos);
        return Flow::Normal;
      }
      case Stmt::K::If:
        for (const auto& [cond, body] : s.branches)
          if (!cond || truthy(eval(*cond))) return run(body);
        return Flow::Normal;
      case Stmt::K::For: return exec_for(s);
      case Stmt::K::Set: exec_set(s); return Flow::Normal;
      case Stmt::K::Break: return Flow::Break;
      case Stmt::K::Continue: return Flow::Continue;
      case Stmt::K::Macro: macros_[s.names[0]] = &s; return Flow::Normal;
    }
    return Flow::Normal;
  }

  // A macro call: its parameters bound (positional, then by name, then defaults; others
  // undefined) in a scope above the template's globals only, as Jinja's macros do not see
  // their caller's variables; the value is the body's rendered text.
  Value call_macro(const Stmt& m, const Expr& e) {
    const size_t n_params = m.names.size() - 1;
    if (e.args.size() > n_params)
      src_.fail(e.pos, "macro " + m.names[0] + "() takes " + std::to_string(n_params) + " arguments, got " +
                           std::to_string(e.args.size()));
    Dict scope;
    for (size_t k = 0; k < e.args.size(); ++k) scope[m.names[k + 1]] = eval(*e.args[k]);
    for (const auto& [name, value] : e.kwargs) {
      if (std::find(m.names.begin() + 1, m.names.end(), name) == m.names.end())
        src_.fail(e.pos, "macro " + m.names[0] + "() has no parameter '" + name + "'");
      scope[name] = eval(*value);
    }
    for (size_t k = 0; k < n_params; ++k)
      if (!scope.count(m.names[k + 1])) scope[m.names[k + 1]] = m.defaults[k] ? eval(*m.defaults[k]) : Value{};
    std::vector<Dict> caller = std::move(scopes_);
    scopes_.clear();
    scopes_.push_back(std::move(caller.front()));  // the globals: top-level sets made before the call are seen
    scopes_.push_back(std::move(scope));
    std::string saved = std::move(out);
    out.clear();
    struct Restore {  // also when the body raises
      Renderer& r;
      std::vector<Dict>& caller;
      std::string& saved;
      ~Restore() {
        caller.front() = std::move(r.scopes_.front());
        r.scopes_ = std::move(caller);
        std::swap(r.out, saved);
      }
    } restore{*this, caller, saved};
    run(m.body);
    return Value::str(std::string(out));
  }

  // The loop variables bound to one item (unpacked when there are several).
  Dict loop_scope(const Stmt& s, const Value& item) {
    Dict scope;
    if (s.names.size() == 1) {
      scope[s.names[0]] = item;
      return scope;
    }
    if (item.t != T::List || item.list->size() != s.names.size())
      src_.fail(s.pos, "cannot unpack a " + std::string(type_name(item)) + " into " + std::to_string(s.names.size()) +
                           " loop variables");
    for (size_t j = 0; j < s.names.size(); ++j) scope[s.names[j]] = (*item.list)[j];
    return scope;
  }

  Flow exec_for(const Stmt& s) {
    List items = iterate(eval(*s.expr), s.expr->pos);
    if (s.filter) {  // `for x in xs if cond`: loop.* then count the items kept
      List kept;
      for (const Value& item : items) {
        scopes_.push_back(loop_scope(s, item));
        const bool keep = truthy(eval(*s.filter));
        scopes_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      steps_.charge(10);  // the scope and loop variables made for each iteration
      // Each iteration gets a fresh scope: Jinja's `set` inside a loop does not survive
      // the iteration, which is why templates carry state in namespace() objects.
      Dict scope = loop_scope(s, items[i]);
      Dict loop{{"index0", Value::integer(i)}, {"index", Value::integer(i + 1)},
                {"revindex0", Value::integer(n - 1 - i)}, {"revindex", Value::integer(n - i)},
                {"first", Value::boolean(i == 0)}, {"last", Value::boolean(i == n - 1)},
                {"length", Value::integer(n)}};
      if (i > 0) loop["previtem"] = items[i - 1];
      if (i + 1 < n) loop["nextitem"] = items[i + 1];
      scope["loop"] = Value::of(std::move(loop));
      scopes_.push_back(std::move(scope));
      const Flow f = run(s.body);
      scopes_.pop_back();
      if (f == Flow::Break) break;
    }
    return n == 0 ? run(s.else_body) : Flow::Normal;
  }

  void exec_set(const Stmt& s) {
    Value v;
    if (s.expr) {
      v = eval(*s.expr);
    } else {  // {% set x %}...{% endset %} captures rendered text
      std::string saved = std::move(out);
      out.clear();
      run(s.body);
      v = Value::str(std::move(out));
      out = std::move(saved);
    }
    if (s.names.size() == 1) {
      scopes_.back()[s.names[0]] = std::move(v);
      return;
    }
    const Value ns = lookup(s.names[0]);
    if (!ns.is_namespace) src_.fail(s.pos, "'set " + s.names[0] + "." + s.names[1] + "' needs a namespace() object");
    (*ns.dict)[s.names[1]] = std::move(v);
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
      if (auto f = it->find(name); f != it->end()) return f->second;
    return Value{};
  }

  List iterate(const Value& v, size_t pos) {
    switch (v.t) {
      case T::Undefined: return {};  // Jinja's Undefined iterates as empty
      case T::List: charge_copy(*v.list); return *v.list;
      case T::Str: steps_.charge(v.s.size()); return utf8_chars(v.s);  // a step per byte, so at least one per character
      case T::Dict: {
        steps_.charge(2 * v.dict->size());
        List keys;
        for (const auto& kv : *v.dict) keys.push_back(Value::str(kv.first));
        return keys;
      }
      default: src_.fail(pos, std::string("cannot iterate over a ") + type_name(v));
    }
  }

  Value eval_inner(const Expr& e) {
    using K = Expr::K;
    switch (e.k) {
      case K::Lit: return e.lit;
      case K::Var: return lookup(e.name);
      case K::Attr: {
        const Value obj = eval(*e.args[0]);
        if (obj.t == T::Undefined) src_.fail(e.pos, "cannot read attribute '" + e.name + "' of an undefined value");
        if (obj.t != T::Dict) return Value{};
        const auto f = obj.dict->find(e.name);
        return f == obj.dict->end() ? Value{} : f->second;
      }
      case K::Index: return index(eval(*e.args[0]), eval(*e.args[1]), e.pos);
      case K::Slice: return slice(e);
      case K::Call: return call(e);
      case K::Method: return method(e);
      case K::Filter: return filter(e);
      case K::Test: return Value::boolean(test(e) != e.negated);
      case K::Not: return Value::boolean(!truthy(eval(*e.args[0])));
      case K::Neg: {
        const Value v = eval(*e.args[0]);
        if (v.t != T::Int) src_.fail(e.pos, std::string("cannot negate a ") + type_name(v));
        if (v.i == INT64_MIN) overflow(e.pos);
        return Value::integer(-v.i);
      }
      case K::And: case K::Or: {  // Python semantics: the deciding operand itself is the result
        Value l = eval(*e.args[0]);
        return truthy(l) == (e.k == K::Or) ? l : eval(*e.args[1]);
      }
      case K::Cond:
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : Value{};
      case K::Bin: return binary(e.name, eval(*e.args[0]), eval(*e.args[1]), e.pos);
      case K::ListLit: {
        List l;
        for (const auto& a : e.args) l.push_back(eval(*a));
        steps_.charge(l.size());
        return Value::of(std::move(l));
      }
      case K::DictLit: {
        Dict d;
        for (size_t k = 0; k < e.args.size(); k += 2) {
          const Value key = eval(*e.args[k]);
          if (key.t != T::Str) src_.fail(e.args[k]->pos, "dict keys must be strings");
          d[key.s] = eval(*e.args[k + 1]);
        }
        return Value::of(std::move(d));
      }
    }
    return Value{};
  }

  Value index(const Value& obj, const Value& key, size_t pos) {
    if (obj.t == T::Undefined) src_.fail(pos, "cannot index an undefined value");
    if (obj.t == T::Dict) {
      if (key.t != T::Str) return Value{};
      const auto f = obj.dict->find(key.s);
      return f == obj.dict->end() ? Value{} : f->second;
    }
    if ((obj.t != T::List && obj.t != T::Str) || key.t != T::Int) return Value{};
    if (obj.t == T::Str) {
      steps_.charge_bytes(obj.s.size());
      const std::vector<size_t> starts = utf8_starts(obj.s);
      const int64_t n = static_cast<int64_t>(starts.size());
      const int64_t i = key.i < 0 ? key.i + n : key.i;
      if (i < 0 || i >= n) return Value{};
      const size_t end = i + 1 < n ? starts[size_t(i) + 1] : obj.s.size();
      return Value::str(obj.s.substr(starts[size_t(i)], end - starts[size_t(i)]));
    }
    const List& l = *obj.list;
    const int64_t n = static_cast<int64_t>(l.size());
    const int64_t i = key.i < 0 ? key.i + n : key.i;
    return i < 0 || i >= n ? Value{} : l[i];  // out of range is undefined in Jinja, not an error
  }

  // Python slice semantics, including negative bounds and negative steps (`[::-1]`).
  Value slice(const Expr& e) {
    const Value obj = eval(*e.args[0]);
    if (obj.t != T::List && obj.t != T::Str) src_.fail(e.pos, std::string("cannot slice a ") + type_name(obj));
    int64_t bound[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.args[k + 1]) continue;
      const Value b = eval(*e.args[k + 1]);
      if (b.t == T::None) continue;
      if (b.t != T::Int) src_.fail(e.args[k + 1]->pos, "slice bounds must be integers");
      bound[k] = b.i, given[k] = true;
    }
    const int64_t step = bound[2];
    if (step == 0) src_.fail(e.pos, "slice step cannot be zero");
    // A string is sliced by character: starts[k] is where character k begins.
    std::vector<size_t> starts;
    if (obj.t == T::Str) {
      steps_.charge_bytes(obj.s.size());
      starts = utf8_starts(obj.s);
    }
    const int64_t n = static_cast<int64_t>(obj.t == T::Str ? starts.size() : obj.list->size());
    auto norm = [n](int64_t v, int64_t lo, int64_t hi) { return std::clamp(v < 0 ? v + n : v, lo, hi); };
    const int64_t start = given[0] ? (step > 0 ? norm(bound[0], 0, n) : norm(bound[0], -1, n - 1)) : (step > 0 ? 0 : n - 1);
    const int64_t stop = given[1] ? (step > 0 ? norm(bound[1], 0, n) : norm(bound[1], -1, n - 1)) : (step > 0 ? n : -1);
    List r;
    std::string str;
    // start and stop lie in [-1, n]: stepping past them ends the loop before any overflow.
    for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
      if (obj.t == T::List) {
        r.push_back((*obj.list)[size_t(i)]);
      } else {
        const size_t end = i + 1 < n ? starts[size_t(i) + 1] : obj.s.size();
        str.append(obj.s, starts[size_t(i)], end - starts[size_t(i)]);
      }
      if (__builtin_add_overflow(i, step, &i)) break;
    }
    if (obj.t == T::List) {
      charge_copy(r);
      return Value::of(std::move(r));
    }
    return Value::str(std::move(str));
  }

  [[noreturn]] void overflow(size_t pos) const {
    src_.fail(pos, "integer overflow (integers here are 64-bit)");
  }

  Value binary(const std::string& op, const Value& a, const Value& b, size_t pos) {
    auto mismatch = [&]() -> Value {
      src_.fail(pos, "operator '" + op + "' does not apply to " + type_name(a) + " and " + type_name(b));
    };
    if (op == "~") {
      std::string l = to_str(a);
      const std::string r = to_str(b);
      check_string(l.size() + r.size(), pos);
      steps_.charge_bytes(l.size() + r.size());
      return Value::str(std::move(l) + r);
    }
    if (op == "==") return Value::boolean(equal(a, b, steps_));
    if (op == "!=") return Value::boolean(!equal(a, b, steps_));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.t == T::Str && a.t == T::Str) found = b.s.find(a.s) != std::string::npos;
      else if (b.t == T::List) found = std::any_of(b.list->begin(), b.list->end(), [&](const Value& x) { return equal(a, x, steps_); });
      else if (b.t == T::Dict) found = a.t == T::Str && b.dict->count(a.s);
      else mismatch();
      return Value::boolean(found != (op == "not in"));
    }
    if (a.t == T::Str && b.t == T::Str) {
      if (op == "+") {
        check_string(a.s.size() + b.s.size(), pos);
        steps_.charge_bytes(a.s.size() + b.s.size());
        return Value::str(a.s + b.s);
      }
      if (op == "<") return Value::boolean(a.s < b.s);
      if (op == ">") return Value::boolean(a.s > b.s);
      if (op == "<=") return Value::boolean(a.s <= b.s);
      if (op == ">=") return Value::boolean(a.s >= b.s);
    }
    if (a.t == T::List && b.t == T::List && op == "+") {
      charge_copy(*a.list);
      charge_copy(*b.list);
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::of(std::move(l));
    }
    auto num = [](const Value& v) { return v.t == T::Int || v.t == T::Bool; };
    if (!num(a) || !num(b)) mismatch();
    const int64_t x = a.t == T::Int ? a.i : a.b, y = b.t == T::Int ? b.i : b.b;
    int64_t r = 0;
    const bool add = op == "+", sub = op == "-", mul = op == "*";
    if (add || sub || mul) {
      if (add ? __builtin_add_overflow(x, y, &r) : sub ? __builtin_sub_overflow(x, y, &r) : __builtin_mul_overflow(x, y, &r))
        overflow(pos);
      return Value::integer(r);
    }
    if (op == "<") return Value::boolean(x < y);
    if (op == ">") return Value::boolean(x > y);
    if (op == "<=") return Value::boolean(x <= y);
    if (op == ">=") return Value::boolean(x >= y);
    if (op == "/") src_.fail(pos, "'/' gives a float, and floats are not supported (use '//')");
    if (y == 0) src_.fail(pos, "integer division by zero");
    if (x == INT64_MIN && y == -1) overflow(pos);
    const int64_t q = x / y - ((x % y != 0) && ((x < 0) != (y < 0)));  // Python floors
    return Value::integer(op == "//" ? q : x - q * y);
  }

  std::vector<Value> eval_args(const Expr& e, size_t first, size_t min, size_t max, const std::string& what) {
    if (!e.kwargs.empty()) src_.fail(e.pos, "keyword arguments to " + what + " are not supported");
    const size_t n = e.args.size() - first;
    if (n < min || n > max) src_.fail(e.pos, what + " takes " + std::to_string(min) + (max > min ? " to " + std::to_string(max) : "") + " arguments, got " + std::to_string(n));
    std::vector<Value> v;
    for (size_t k = first; k < e.args.size(); ++k) v.push_back(eval(*e.args[k]));
    return v;
  }
  std::string str_arg(const Value& v, size_t pos, const std::string& what) {
    if (v.t != T::Str) src_.fail(pos, what + " needs a string argument, got a " + type_name(v));
    return v.s;
  }

  Value call(const Expr& e) {
    if (const auto m = macros_.find(e.name); m != macros_.end()) return call_macro(*m->second, e);
    if (e.name == "raise_exception") {
      const auto a = eval_args(e, 0, 1, 1, "raise_exception()");
      throw Error("chat template raised an exception: " + to_str(a[0]));
    }
    if (e.name == "namespace") {
      if (!e.args.empty()) src_.fail(e.pos, "namespace() takes only keyword arguments here");
      Dict d;
      for (const auto& [k, v] : e.kwargs) d[k] = eval(*v);
      Value ns = Value::of(std::move(d));
      ns.is_namespace = true;
      namespaces_.push_back(ns.dict);
      return ns;
    }
    if (e.name == "range") {
      const auto a = eval_args(e, 0, 1, 3, "range()");
      for (const Value& v : a) if (v.t != T::Int) src_.fail(e.pos, "range() needs integers");
      const int64_t lo = a.size() > 1 ? a[0].i : 0, hi = a.size() > 1 ? a[1].i : a[0].i, step = a.size() > 2 ? a[2].i : 1;
      if (step == 0) src_.fail(e.pos, "range() step cannot be zero");
      const __int128 span = static_cast<__int128>(hi) - lo;
      const __int128 count = step > 0 ? (span > 0 ? (span - 1) / step + 1 : 0) : (span < 0 ? (span + 1) / step + 1 : 0);
      if (count > 100000) src_.fail(e.pos, "range() longer than the limit of 100000 numbers");
      steps_.charge(2 * static_cast<uint64_t>(count));
      List l;
      for (__int128 k = 0; k < count; ++k) l.push_back(Value::integer(static_cast<int64_t>(lo + k * step)));
      return Value::of(std::move(l));
    }
    if (e.name == "strftime_now") {  // transformers provides it; Llama 3.x dates the system prompt
      const auto a = eval_args(e, 0, 1, 1, "strftime_now()");
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      const size_t n = std::strftime(buf, sizeof buf, str_arg(a[0], e.pos, "strftime_now()").c_str(), &tm);
      return Value::str(std::string(buf, n));
    }
    src_.fail(e.pos, "unsupported function '" + e.name + "()'");
  }

  Value method(const Expr& e) {
    const Value obj = eval(*e.args[0]);
    const std::string what = "." + e.name + "()";
    if (obj.t == T::Str) {
      const std::string& s = obj.s;
      if (e.name == "strip" || e.name == "lstrip" || e.name == "rstrip") {
        const auto a = eval_args(e, 1, 0, 1, what);
        const std::string chars = a.empty() || a[0].t == T::None ? kSpace : str_arg(a[0], e.pos, what);
        return Value::str(py_strip(s, chars, e.name != "rstrip", e.name != "lstrip"));
      }
      if (e.name == "startswith" || e.name == "endswith") {
        const std::string x = str_arg(eval_args(e, 1, 1, 1, what)[0], e.pos, what);
        return Value::boolean(e.name == "startswith" ? s.starts_with(x) : s.ends_with(x));
      }
      if (e.name == "upper" || e.name == "lower") {
        eval_args(e, 1, 0, 0, what);
        return case_map(s, e.name == "upper");
      }
      if (e.name == "replace") {
        const auto a = eval_args(e, 1, 2, 2, what);
        const std::string from = str_arg(a[0], e.pos, what), to = str_arg(a[1], e.pos, what);
        if (from.empty()) src_.fail(e.pos, "replace() with an empty pattern is not supported");
        std::string r;
        size_t p = 0;
        for (size_t f; (f = s.find(from, p)) != std::string::npos; p = f + from.size()) {
          check_string(r.size() + (f - p) + to.size(), e.pos);
          r.append(s, p, f - p);
          r += to;
        }
        check_string(r.size() + (s.size() - p), e.pos);
        steps_.charge_bytes(r.size() + s.size());
        return Value::str(r + s.substr(p));
      }
      if (e.name == "split") {
        const auto a = eval_args(e, 1, 0, 1, what);
        List parts;
        auto part = [&](size_t from, size_t to) {  // each part is charged as it is made
          steps_.charge(2 + (to - from) / 64);
          parts.push_back(Value::str(s.substr(from, to - from)));
        };
        if (a.empty() || a[0].t == T::None) {  // Python: split on whitespace runs, drop empties
          size_t p = 0;
          while ((p = s.find_first_not_of(kSpace, p)) != std::string::npos) {
            const size_t q = std::min(s.find_first_of(kSpace, p), s.size());
            part(p, q);
            p = q;
          }
          return Value::of(std::move(parts));
        }
        const std::string sep = str_arg(a[0], e.pos, what);
        if (sep.empty()) src_.fail(e.pos, "split() with an empty separator");
        size_t p = 0;
        for (size_t f; (f = s.find(sep, p)) != std::string::npos; p = f + sep.size()) part(p, f);
        part(p, s.size());
        return Value::of(std::move(parts));
      }
    } else if (obj.t == T::Dict && !obj.is_namespace) {
      if (e.name == "get") {
        const auto a = eval_args(e, 1, 1, 2, what);
        const auto f = a[0].t == T::Str ? obj.dict->find(a[0].s) : obj.dict->end();
        return f != obj.dict->end() ? f->second : a.size() > 1 ? a[1] : Value::none();
      }
      if (e.name == "keys" || e.name == "values" || e.name == "items") {
        eval_args(e, 1, 0, 0, what);
        steps_.charge(3 * obj.dict->size());
        List l;
        for (const auto& [k, v] : *obj.dict)
          l.push_back(e.name == "keys" ? Value::str(k) : e.name == "values" ? v : Value::of(List{Value::str(k), v}));
        return Value::of(std::move(l));
      }
    } else if (obj.t == T::Undefined) {
      src_.fail(e.pos, "cannot call " + what + " on an undefined value");
    }
    src_.fail(e.pos, "unsupported method " + what + " on a " + type_name(obj));
  }

  static Value case_map(const std::string& s, bool upper) {  // ASCII only; Python maps all of Unicode
    std::string r = s;
    for (char& c : r) c = static_cast<char>(upper ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
    return Value::str(std::move(r));
  }

  Value filter(const Expr& e) {
    const Value v = eval(*e.args[0]);
    const std::string& f = e.name;
    const std::string what = "filter '" + f + "'";
    if (f == "trim") {
      const auto a = eval_args(e, 1, 0, 1, what);
      return Value::str(py_strip(to_str(v), a.empty() ? kSpace : str_arg(a[0], e.pos, what), true, true));
    }
    if (f == "length" || f == "count") {
      eval_args(e, 1, 0, 0, what);
      if (v.t == T::Str) return Value::integer(static_cast<int64_t>(utf8_starts(v.s).size()));
      if (v.t == T::List) return Value::integer(static_cast<int64_t>(v.list->size()));
      if (v.t == T::Dict) return Value::integer(static_cast<int64_t>(v.dict->size()));
      if (v.t == T::Undefined) return Value::integer(0);
      src_.fail(e.pos, std::string("a ") + type_name(v) + " has no length");
    }
    if (f == "tojson") {
      if (v.t == T::Undefined) src_.fail(e.pos, "cannot convert an undefined value to JSON");
      return Value::str(to_json(v, json_style(e, what)));
    }
    if (f == "string") return eval_args(e, 1, 0, 0, what), Value::str(to_str(v));
    if (f == "list") return eval_args(e, 1, 0, 0, what), Value::of(iterate(v, e.pos));
    if (f == "selectattr" || f == "rejectattr") {
      // selectattr("role", "equalto", "user"): the items whose attribute passes the test
      // (truthy without one). Mistral's templates pick the user turns this way.
      const auto a = eval_args(e, 1, 1, 3, what);
      const std::string name = str_arg(a[0], e.pos, what);
      const std::string test_name = a.size() > 1 ? str_arg(a[1], e.pos, what) : std::string();
      List kept;
      for (const Value& item : iterate(v, e.pos)) {
        Value x;
        if (item.t == T::Dict)
          if (const auto found = item.dict->find(name); found != item.dict->end()) x = found->second;
        if (attribute_passes(x, test_name, a.size() > 2 ? &a[2] : nullptr, e.pos, what) == (f == "selectattr"))
          kept.push_back(item);
      }
      return Value::of(std::move(kept));
    }
    if (f == "upper" || f == "lower") return eval_args(e, 1, 0, 0, what), case_map(to_str(v), f == "upper");
    if (f == "first" || f == "last") {
      eval_args(e, 1, 0, 0, what);
      if (v.t != T::List && v.t != T::Str) src_.fail(e.pos, what + " needs a list or string");
      return index(v, Value::integer(f == "first" ? 0 : -1), e.pos);
    }
    if (f == "default" || f == "d") {
      const auto a = eval_args(e, 1, 0, 2, what);
      const bool use_default = v.t == T::Undefined || (a.size() > 1 && truthy(a[1]) && !truthy(v));
      return use_default ? (a.empty() ? Value::str("") : a[0]) : v;
    }
    if (f == "join") {
      const auto a = eval_args(e, 1, 0, 1, what);
      const std::string sep = a.empty() ? "" : to_str(a[0]);
      std::string r;
      const List items = iterate(v, e.pos);
      for (size_t k = 0; k < items.size(); ++k) {
        const std::string item = to_str(items[k]);
        check_string(r.size() + (k ? sep.size() : 0) + item.size(), e.pos);
        if (k) r += sep;
        r += item;
      }
      steps_.charge_bytes(r.size());
      return Value::str(r);
    }
    src_.fail(e.pos, "unsupported filter '" + f + "'");
  }

  // tojson(indent=4, sort_keys=true, ensure_ascii=false, separators=(",", ": ")): the
  // keywords transformers' tojson passes on to json.dumps (Llama 3.x templates indent tools).
  JsonStyle json_style(const Expr& e, const std::string& what) {
    if (e.args.size() > 1) src_.fail(e.pos, what + " takes keyword arguments only (indent=..., sort_keys=...)");
    JsonStyle style;
    bool separators = false;
    for (const auto& [key, arg] : e.kwargs) {
      const Value a = eval(*arg);
      if (key == "indent" && a.t == T::Int && a.i >= 0 && a.i <= 64) {
        style.indent = static_cast<int>(a.i);
      } else if (key == "indent" && a.t == T::None) {
        style.indent = -1;
      } else if ((key == "sort_keys" || key == "ensure_ascii") && a.t == T::Bool) {
        (key == "sort_keys" ? style.sort_keys : style.ensure_ascii) = a.b;
      } else if (key == "separators" && a.t == T::List && a.list->size() == 2 && (*a.list)[0].t == T::Str &&
                 (*a.list)[1].t == T::Str) {
        style.item_separator = (*a.list)[0].s;
        style.key_separator = (*a.list)[1].s;
        separators = true;
      } else {
        src_.fail(e.pos, what + ": unsupported argument " + key + "=" + repr(a) +
                             " (indent: 0 to 64 or none; sort_keys, ensure_ascii: a boolean; separators: two strings)");
      }
    }
    if (style.indent >= 0 && !separators) style.item_separator = ",";  // json.dumps's default with an indent
    return style;
  }

  // The tests selectattr and rejectattr can name ("" for truthiness).
  bool attribute_passes(const Value& x, const std::string& test_name, const Value* arg, size_t pos, const std::string& what) {
    const bool needs_arg = test_name == "equalto" || test_name == "eq" || test_name == "==" || test_name == "ne" ||
                           test_name == "!=";
    if (needs_arg != (arg != nullptr)) src_.fail(pos, what + ": test '" + test_name + "' takes " + (needs_arg ? "one argument" : "no argument"));
    if (test_name.empty()) return truthy(x);
    if (needs_arg) return equal(x, *arg, steps_) == (test_name != "ne" && test_name != "!=");
    if (test_name == "defined") return x.t != T::Undefined;
    if (test_name == "undefined") return x.t == T::Undefined;
    if (test_name == "none") return x.t == T::None;
    if (test_name == "string") return x.t == T::Str;
    src_.fail(pos, what + ": unsupported test '" + test_name + "' (equalto, ne, defined, undefined, none, string)");
  }

  bool test(const Expr& e) {
    const Value v = eval(*e.args[0]);
    const std::string& t = e.name;
    if (t == "defined") return v.t != T::Undefined;
    if (t == "undefined") return v.t == T::Undefined;
    if (t == "none") return v.t == T::None;
    if (t == "string") return v.t == T::Str;
    if (t == "number") return v.t == T::Int || v.t == T::Float;
    if (t == "integer") return v.t == T::Int;
    if (t == "float") return v.t == T::Float;
    if (t == "boolean") return v.t == T::Bool;
    if (t == "true") return v.t == T::Bool && v.b;
    if (t == "false") return v.t == T::Bool && !v.b;
    if (t == "mapping") return v.t == T::Dict;
    if (t == "sequence" || t == "iterable") return v.t == T::List || v.t == T::Str || v.t == T::Dict;
    if (t == "odd" || t == "even") {
      if (v.t != T::Int) src_.fail(e.pos, "test '" + t + "' needs an integer");
      return (v.i % 2 != 0) == (t == "odd");
    }
    src_.fail(e.pos, "unsupported test 'is " + t + "'");
  }

  const Source& src_;
  std::vector<Dict> scopes_;  // globals first; one per active loop iteration after that
  std::vector<std::shared_ptr<Dict>> namespaces_;  // every namespace() made, kept alive to the end
  std::map<std::string, const Stmt*> macros_;       // defined so far, by name
  Steps steps_;
  int depth_ = 0;
};

}  // namespace

std::string render(const Source& src, const Body& body, Dict globals) {
  Renderer r(src, std::move(globals));
  r.run(body);
  return std::move(r.out);
}

}  // namespace qrun::jinja
