// The Jinja subset behind apply_chat_template, in three stages: split the template into
// text and tags (applying Jinja's whitespace rules), parse the tags into statements and
// expressions (recursive descent with Jinja's precedence), then walk that tree with
// Python-like values. Semantics follow Jinja2 + transformers wherever a template can tell.
#include "src/chat_template.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "qrun/error.h"

namespace qrun {
namespace {

// ---------------------------------------------------------------- values

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

Value Value::of(Dict x) { Value v; v.t = T::Dict; v.dict = std::make_shared<Dict>(std::move(x)); return v; }

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

std::string repr(const Value& v);

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
const std::string kSpace = " \t\n\r\v\f";

// ---------------------------------------------------------------- source positions

class Source {
 public:
  explicit Source(const std::string& text) : text_(text) {}
  const std::string& text() const { return text_; }
  [[noreturn]] void fail(size_t pos, const std::string& what) const {
    size_t line = 1, col = 1;
    for (size_t k = 0; k < pos && k < text_.size(); ++k) text_[k] == '\n' ? (++line, col = 1) : ++col;
    throw Error("chat template: " + what + " (line " + std::to_string(line) + ", column " + std::to_string(col) +
                ", offset " + std::to_string(pos) + ")");
  }

 private:
  const std::string& text_;
};

// ---------------------------------------------------------------- lexing

struct Tok {
  enum class K { Name, Str, Int, Op, End } k;
  std::string text;  // name, decoded string literal or operator
  int64_t ival = 0;
  size_t pos = 0;
};

struct Piece {
  enum class K { Text, Var, Block, Comment } k;
  size_t pos = 0;
  std::string text;          // Text only
  std::vector<Tok> toks;     // Var/Block: the tag's tokens, ending with End
  char left = 0, right = 0;  // '-' / '+' modifiers just inside the delimiters
};

// Lexes the inside of a {{ }} / {% %} tag starting at `p`; returns the offset after the tag.
// Brackets are tracked so a `}}` inside a dict literal does not end the tag (as in Jinja).
size_t lex_tag(const Source& src, size_t p, const char* close, Piece& piece) {
  const std::string& t = src.text();
  const size_t start = p - 2;
  if (p < t.size() && (t[p] == '-' || t[p] == '+')) piece.left = t[p++];
  int depth = 0;
  for (;;) {
    if (p >= t.size()) src.fail(start, std::string("unterminated tag (missing '") + close + "')");
    const char c = t[p];
    if (std::isspace(static_cast<unsigned char>(c))) { ++p; continue; }
    if (depth == 0 && (c == '-' || c == '+') && t.compare(p + 1, 2, close) == 0) { piece.right = c; p += 3; break; }
    if (depth == 0 && t.compare(p, 2, close) == 0) { p += 2; break; }
    Tok tok{Tok::K::Op, "", 0, p};
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      tok.k = Tok::K::Name;
      while (p < t.size() && (std::isalnum(static_cast<unsigned char>(t[p])) || t[p] == '_')) tok.text += t[p++];
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      tok.k = Tok::K::Int;
      while (p < t.size() && std::isdigit(static_cast<unsigned char>(t[p]))) tok.text += t[p++];
      if (p + 1 < t.size() && t[p] == '.' && std::isdigit(static_cast<unsigned char>(t[p + 1])))
        src.fail(tok.pos, "floating-point numbers are not supported");
      if (tok.text.size() > 18) src.fail(tok.pos, "integer literal too large");
      tok.ival = std::stoll(tok.text);
    } else if (c == '\'' || c == '"') {
      tok.k = Tok::K::Str;
      for (++p;; ++p) {
        if (p >= t.size()) src.fail(tok.pos, "unterminated string literal");
        if (t[p] == c) { ++p; break; }
        if (t[p] != '\\' || p + 1 >= t.size()) { tok.text += t[p]; continue; }
        const char e = t[++p];
        if (e == 'n') tok.text += '\n';
        else if (e == 't') tok.text += '\t';
        else if (e == 'r') tok.text += '\r';
        else if (e == '\\' || e == '\'' || e == '"') tok.text += e;
        else tok.text += '\\', tok.text += e;  // Python keeps unknown escapes verbatim
      }
    } else {
      static const char* two[] = {"==", "!=", "<=", ">=", "//", "**"};
      for (const char* op : two)
        if (t.compare(p, 2, op) == 0) tok.text = op;
      if (tok.text.empty() && std::string("+-*/%~<>()[]{}.,:|=").find(c) != std::string::npos) tok.text = c;
      if (tok.text.empty()) src.fail(p, std::string("unexpected character '") + c + "' in tag");
      if (tok.text == "**") src.fail(p, "the power operator '**' is not supported");
      p += tok.text.size();
      depth += (c == '(' || c == '[' || c == '{') - (c == ')' || c == ']' || c == '}');
    }
    piece.toks.push_back(std::move(tok));
  }
  piece.toks.push_back(Tok{Tok::K::End, "end of tag", 0, p - 2});
  return p;
}

std::vector<Piece> split_template(const Source& src) {
  const std::string& t = src.text();
  std::vector<Piece> out;
  size_t p = 0;
  while (p < t.size()) {
    size_t open = p;
    while ((open = t.find('{', open)) != std::string::npos && open + 1 < t.size() &&
           t[open + 1] != '{' && t[open + 1] != '%' && t[open + 1] != '#')
      ++open;
    if (open == std::string::npos || open + 1 >= t.size()) open = t.size();
    if (open > p) out.push_back(Piece{Piece::K::Text, p, t.substr(p, open - p), {}, 0, 0});
    if (open == t.size()) break;
    Piece piece{Piece::K::Var, open, "", {}, 0, 0};
    if (t[open + 1] == '#') {
      piece.k = Piece::K::Comment;
      const size_t end = t.find("#}", open + 2);
      if (end == std::string::npos) src.fail(open, "unterminated comment (missing '#}')");
      if (t[open + 2] == '-' || t[open + 2] == '+') piece.left = t[open + 2];
      if (end > open + 2 && (t[end - 1] == '-' || t[end - 1] == '+')) piece.right = t[end - 1];
      p = end + 2;
    } else if (t[open + 1] == '%') {
      piece.k = Piece::K::Block;
      p = lex_tag(src, open + 2, "%}", piece);
      // Raw blocks hold unlexable text; reject them here, before that text is lexed.
      if (piece.toks[0].text == "raw") src.fail(piece.toks[0].pos, "unsupported statement '{% raw %}'");
    } else {
      p = lex_tag(src, open + 2, "}}", piece);
    }
    out.push_back(std::move(piece));
  }
  return out;
}

// Whitespace control: explicit '-' modifiers, plus trim_blocks (drop the newline after a
// block or comment tag) and lstrip_blocks (drop the indentation before a block or comment
// tag that starts its line), both of which transformers turns on.
void apply_whitespace_rules(std::vector<Piece>& ps, const std::string& t) {
  for (size_t k = 0; k < ps.size(); ++k) {
    const Piece& p = ps[k];
    if (p.k == Piece::K::Text) continue;
    const bool block = p.k != Piece::K::Var;
    if (k > 0 && ps[k - 1].k == Piece::K::Text) {
      std::string& prev = ps[k - 1].text;
      if (p.left == '-') {
        prev = py_strip(prev, kSpace, false, true);
      } else if (block && p.left != '+') {
        size_t q = p.pos;
        while (q > 0 && (t[q - 1] == ' ' || t[q - 1] == '\t')) --q;
        if (q == 0 || t[q - 1] == '\n') prev = py_strip(prev, " \t", false, true);
      }
    }
    if (k + 1 < ps.size() && ps[k + 1].k == Piece::K::Text) {
      std::string& next = ps[k + 1].text;
      if (p.right == '-') next = py_strip(next, kSpace, true, false);
      else if (block && p.right != '+' && next.starts_with('\n')) next.erase(0, 1);
      else if (block && p.right != '+' && next.starts_with("\r\n")) next.erase(0, 2);
    }
  }
}

// ---------------------------------------------------------------- expressions

struct Expr;
using ExprP = std::unique_ptr<Expr>;
struct Expr {
  enum class K { Lit, Var, Attr, Index, Slice, Call, Method, Filter, Test, Not, Neg, Bin, And, Or, Cond, ListLit, DictLit } k;
  size_t pos = 0;
  std::string name;  // variable, attribute, function, method, filter or test name; operator
  std::vector<ExprP> args;  // operands (null for an omitted slice bound or ternary else)
  std::vector<std::pair<std::string, ExprP>> kwargs;
  Value lit;
  bool negated = false;  // `is not`
};

ExprP node(Expr::K k, size_t pos, std::string name = {}) {
  auto e = std::make_unique<Expr>();
  e->k = k, e->pos = pos, e->name = std::move(name);
  return e;
}

// Recursive descent with Jinja's precedence, loosest first: ternary, or, and, not,
// comparisons / in, + -, ~, * // %, unary minus, then postfix (. [] ()) with filters and
// `is` tests binding tightest of all (so `a + b is defined` is `a + (b is defined)`).
class ExprParser {
 public:
  ExprParser(const Source& src, const std::vector<Tok>& toks, size_t start) : src_(src), toks_(toks), k_(start) {}

  ExprP parse() {
    if (++depth_ > 64) src_.fail(peek().pos, "expression nested too deeply");
    ExprP e = or_expr();
    while (is_name("if")) {
      auto c = node(Expr::K::Cond, next().pos);
      c->args.push_back(or_expr());
      c->args.push_back(std::move(e));
      c->args.push_back(accept_name("else") ? parse() : nullptr);
      e = std::move(c);
    }
    --depth_;
    return e;
  }
  ExprP or_expr() { return binary_chain(Expr::K::Or, "or", &ExprParser::and_expr); }
  ExprP and_expr() { return binary_chain(Expr::K::And, "and", &ExprParser::not_expr); }

  const Tok& peek() const { return toks_[std::min(k_, toks_.size() - 1)]; }
  const Tok& next() { const Tok& t = peek(); if (k_ < toks_.size() - 1) ++k_; return t; }
  bool is_op(const char* op) const { return peek().k == Tok::K::Op && peek().text == op; }
  bool is_name(const char* n) const { return peek().k == Tok::K::Name && peek().text == n; }
  bool accept_op(const char* op) { return is_op(op) ? (next(), true) : false; }
  bool accept_name(const char* n) { return is_name(n) ? (next(), true) : false; }
  [[noreturn]] void unexpected(const std::string& wanted) const {
    const Tok& t = peek();
    src_.fail(t.pos, "expected " + wanted + " but found " +
                         (t.k == Tok::K::End ? t.text : t.k == Tok::K::Str ? "a string" : "'" + t.text + "'"));
  }
  void expect_op(const char* op) { if (!accept_op(op)) unexpected(std::string("'") + op + "'"); }
  std::string expect_name() { if (peek().k != Tok::K::Name) unexpected("a name"); return next().text; }
  void expect_end() { if (peek().k != Tok::K::End) unexpected("end of tag"); }

 private:
  ExprP binary_chain(Expr::K k, const char* word, ExprP (ExprParser::*sub)()) {
    ExprP e = (this->*sub)();
    while (is_name(word)) {
      auto b = node(k, next().pos, word);
      b->args.push_back(std::move(e));
      b->args.push_back((this->*sub)());
      e = std::move(b);
    }
    return e;
  }
  ExprP bin(ExprP l, const Tok& op, std::string name, ExprP (ExprParser::*sub)()) {
    auto b = node(Expr::K::Bin, op.pos, std::move(name));
    b->args.push_back(std::move(l));
    b->args.push_back((this->*sub)());
    return b;
  }
  ExprP not_expr() {
    if (!is_name("not")) return compare();
    auto n = node(Expr::K::Not, next().pos);
    n->args.push_back(not_expr());
    return n;
  }
  ExprP compare() {
    ExprP e = additive();
    for (;;) {
      const Tok& t = peek();
      if (t.k == Tok::K::Op && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == ">" ||
                                t.text == "<=" || t.text == ">=")) {
        e = bin(std::move(e), next(), t.text, &ExprParser::additive);
      } else if (is_name("in")) {
        e = bin(std::move(e), next(), "in", &ExprParser::additive);
      } else if (is_name("not") && toks_[k_ + 1].k == Tok::K::Name && toks_[k_ + 1].text == "in") {
        const Tok& op = next();
        next();
        e = bin(std::move(e), op, "not in", &ExprParser::additive);
      } else {
        return e;
      }
    }
  }
  ExprP additive() {
    ExprP e = concat();
    while (is_op("+") || is_op("-")) e = bin(std::move(e), peek(), next().text, &ExprParser::concat);
    return e;
  }
  ExprP concat() {
    ExprP e = multiplicative();
    while (is_op("~")) e = bin(std::move(e), peek(), next().text, &ExprParser::multiplicative);
    return e;
  }
  ExprP multiplicative() {
    ExprP e = unary_with_filters();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%"))
      e = bin(std::move(e), peek(), next().text, &ExprParser::unary_with_filters);
    return e;
  }
  ExprP unary_with_filters() { return unary(true); }
  ExprP unary(bool with_filters) {
    ExprP e;
    if (is_op("-")) {
      e = node(Expr::K::Neg, next().pos);
      e->args.push_back(unary(false));
    } else {
      accept_op("+");
      e = primary();
    }
    e = postfix(std::move(e));
    return with_filters ? filters(std::move(e)) : std::move(e);
  }
  ExprP postfix(ExprP e) {
    for (;;) {
      if (is_op(".")) {
        const size_t pos = next().pos;
        std::string name = expect_name();
        if (is_op("(")) {
          auto m = node(Expr::K::Method, pos, std::move(name));
          m->args.push_back(std::move(e));
          call_args(*m);
          e = std::move(m);
        } else {
          auto a = node(Expr::K::Attr, pos, std::move(name));
          a->args.push_back(std::move(e));
          e = std::move(a);
        }
      } else if (is_op("[")) {
        auto s = node(Expr::K::Index, next().pos);
        s->args.push_back(std::move(e));
        if (!is_op(":")) s->args.push_back(parse());
        else s->args.push_back(nullptr);
        if (accept_op(":")) {
          s->k = Expr::K::Slice;
          s->args.push_back(is_op("]") || is_op(":") ? nullptr : parse());
          s->args.push_back(accept_op(":") && !is_op("]") ? parse() : nullptr);
        } else if (!s->args[1]) {
          unexpected("an index");
        }
        expect_op("]");
        e = std::move(s);
      } else if (is_op("(")) {
        if (e->k != Expr::K::Var) src_.fail(peek().pos, "only named functions can be called");
        e->k = Expr::K::Call;
        call_args(*e);
      } else {
        return e;
      }
    }
  }
  ExprP filters(ExprP e) {
    for (;;) {
      if (accept_op("|")) {
        auto f = node(Expr::K::Filter, peek().pos);
        f->name = expect_name();
        f->args.push_back(std::move(e));
        if (is_op("(")) call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        auto t = node(Expr::K::Test, next().pos);
        t->negated = accept_name("not");
        t->name = expect_name();
        t->args.push_back(std::move(e));
        e = std::move(t);
      } else {
        return e;
      }
    }
  }
  void call_args(Expr& e) {
    expect_op("(");
    while (!accept_op(")")) {
      if (peek().k == Tok::K::Name && toks_[k_ + 1].k == Tok::K::Op && toks_[k_ + 1].text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(std::move(key), parse());
      } else {
        e.args.push_back(parse());
      }
      if (!is_op(")")) expect_op(",");
    }
  }
  ExprP primary() {
    const Tok& t = peek();
    if (t.k == Tok::K::Name) {
      next();
      auto lit = node(Expr::K::Lit, t.pos);
      if (t.text == "true" || t.text == "True") lit->lit = Value::boolean(true);
      else if (t.text == "false" || t.text == "False") lit->lit = Value::boolean(false);
      else if (t.text == "none" || t.text == "None") lit->lit = Value::none();
      else return node(Expr::K::Var, t.pos, t.text);
      return lit;
    }
    if (t.k == Tok::K::Str || t.k == Tok::K::Int) {
      auto lit = node(Expr::K::Lit, next().pos);
      lit->lit = t.k == Tok::K::Int ? Value::integer(t.ival) : Value::str(t.text);
      while (t.k == Tok::K::Str && peek().k == Tok::K::Str) lit->lit.s += next().text;  // 'a' 'b' == 'ab'
      return lit;
    }
    if (accept_op("(")) {
      ExprP e = parse();
      if (is_op(",")) src_.fail(peek().pos, "tuples are not supported");
      expect_op(")");
      return e;
    }
    if (is_op("[") || is_op("{")) {
      const bool is_list = is_op("[");
      auto e = node(is_list ? Expr::K::ListLit : Expr::K::DictLit, next().pos);
      const char* close = is_list ? "]" : "}";
      while (!accept_op(close)) {
        e->args.push_back(parse());
        if (!is_list) expect_op(":"), e->args.push_back(parse());
        if (!is_op(close)) expect_op(",");
      }
      return e;
    }
    unexpected("an expression");
  }

  const Source& src_;
  const std::vector<Tok>& toks_;
  size_t k_;
  int depth_ = 0;
};

// ---------------------------------------------------------------- statements

struct Stmt;
using Body = std::vector<Stmt>;
struct Stmt {
  enum class K { Text, Out, If, For, Set, Break, Continue } k;
  size_t pos = 0;
  std::string text;                // Text
  ExprP expr;                      // Out value, For iterable, Set value (null for a block set)
  std::vector<std::string> names;  // For: loop variables; Set: {name} or {namespace, attribute}
  std::vector<std::pair<ExprP, Body>> branches;  // If: condition (null for else) and body
  Body body, else_body;            // For body and else; block Set body
};

class TemplateParser {
 public:
  TemplateParser(const Source& src, const std::vector<Piece>& ps) : src_(src), ps_(ps) {}

  Body parse() {
    Body body;
    parse_until(body, {}, "", 0);
    return body;
  }

 private:
  // Appends statements to `out` up to a block tag whose keyword is in `stops`; returns
  // that keyword and leaves `tail_` parsing the rest of that tag.
  std::string parse_until(Body& out, const std::vector<std::string>& stops, const std::string& opener, size_t open_pos) {
    while (k_ < ps_.size()) {
      const Piece& p = ps_[k_++];
      if (p.k == Piece::K::Text) {
        if (!p.text.empty()) out.push_back(Stmt{Stmt::K::Text, p.pos, p.text, {}, {}, {}, {}, {}});
      } else if (p.k == Piece::K::Var) {
        ExprParser ep(src_, p.toks, 0);
        Stmt s{Stmt::K::Out, p.pos, {}, ep.parse(), {}, {}, {}, {}};
        ep.expect_end();
        out.push_back(std::move(s));
      } else if (p.k == Piece::K::Block) {
        const Tok& kw = p.toks[0];
        if (kw.k != Tok::K::Name) src_.fail(kw.pos, "expected a statement keyword");
        tail_ = std::make_unique<ExprParser>(src_, p.toks, 1);
        if (std::find(stops.begin(), stops.end(), kw.text) != stops.end()) return kw.text;
        statement(kw, out);
      }
    }
    if (!stops.empty()) src_.fail(open_pos, "'{% " + opener + " %}' is never closed with '{% " + stops.back() + " %}'");
    return "";
  }

  void statement(const Tok& kw, Body& out) {
    ExprParser& ep = *tail_;
    Stmt s{Stmt::K::If, kw.pos, {}, {}, {}, {}, {}, {}};
    const std::string& w = kw.text;
    if (w == "if") {
      std::string stop = "elif";
      while (stop == "elif") {
        ExprP cond = tail_->parse();
        tail_->expect_end();
        Body body;
        stop = parse_until(body, {"elif", "else", "endif"}, "if", kw.pos);
        s.branches.emplace_back(std::move(cond), std::move(body));
      }
      if (stop == "else") {
        tail_->expect_end();
        Body body;
        parse_until(body, {"endif"}, "if", kw.pos);
        s.branches.emplace_back(nullptr, std::move(body));
      }
    } else if (w == "for") {
      s.k = Stmt::K::For;
      do s.names.push_back(ep.expect_name()); while (ep.accept_op(","));
      if (!ep.accept_name("in")) ep.unexpected("'in'");
      s.expr = ep.or_expr();
      if (ep.is_name("if")) src_.fail(ep.peek().pos, "loop filters ('for ... if ...') are not supported");
      if (ep.is_name("recursive")) src_.fail(ep.peek().pos, "recursive loops are not supported");
      ep.expect_end();
      ++loop_depth_;
      const std::string stop = parse_until(s.body, {"else", "endfor"}, "for", kw.pos);
      --loop_depth_;
      if (stop == "else") tail_->expect_end(), parse_until(s.else_body, {"endfor"}, "for", kw.pos);
    } else if (w == "set") {
      s.k = Stmt::K::Set;
      s.names.push_back(ep.expect_name());
      if (ep.accept_op(".")) s.names.push_back(ep.expect_name());
      if (ep.is_op(",")) src_.fail(ep.peek().pos, "tuple assignment is not supported");
      if (ep.accept_op("=")) s.expr = ep.parse();
      else if (ep.peek().k == Tok::K::End) parse_until(s.body, {"endset"}, "set", kw.pos);
      else ep.unexpected("'='");
    } else if (w == "break" || w == "continue") {
      if (loop_depth_ == 0) src_.fail(kw.pos, "'{% " + w + " %}' outside a loop");
      s.k = w == "break" ? Stmt::K::Break : Stmt::K::Continue;
    } else if (w == "generation") {
      // transformers' marker for assistant-token masks: renders its body unchanged.
      Body body;
      ep.expect_end();
      parse_until(body, {"endgeneration"}, "generation", kw.pos);
      s.branches.emplace_back(nullptr, std::move(body));
    } else if (w == "elif" || w == "else" || w.starts_with("end")) {
      src_.fail(kw.pos, "'{% " + w + " %}' without a matching opening tag");
    } else {
      src_.fail(kw.pos, "unsupported statement '{% " + w + " %}'");
    }
    tail_->expect_end();
    out.push_back(std::move(s));
  }

  const Source& src_;
  const std::vector<Piece>& ps_;
  size_t k_ = 0;
  int loop_depth_ = 0;
  std::unique_ptr<ExprParser> tail_;
};


// ---------------------------------------------------------------- evaluation

enum class Flow { Normal, Break, Continue };

class Renderer {
 public:
  Renderer(const Source& src, Dict globals) : src_(src) { scopes_.push_back(std::move(globals)); }

  std::string out;

  Flow run(const Body& body) {
    for (const Stmt& s : body)
      if (Flow f = exec(s); f != Flow::Normal) return f;
    return Flow::Normal;
  }

 private:
  Flow exec(const Stmt& s) {
    switch (s.k) {
      case Stmt::K::Text: out += s.text; return Flow::Normal;
      case Stmt::K::Out: out += to_str(eval(*s.expr)); return Flow::Normal;
      case Stmt::K::If:
        for (const auto& [cond, body] : s.branches)
          if (!cond || truthy(eval(*cond))) return run(body);
        return Flow::Normal;
      case Stmt::K::For: return exec_for(s);
      case Stmt::K::Set: exec_set(s); return Flow::Normal;
      case Stmt::K::Break: return Flow::Break;
      case Stmt::K::Continue: return Flow::Continue;
    }
    return Flow::Normal;
  }

  Flow exec_for(const Stmt& s) {
    const List items = iterate(eval(*s.expr), s.expr->pos);
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      // Each iteration gets a fresh scope: Jinja's `set` inside a loop does not survive
      // the iteration, which is why templates carry state in namespace() objects.
      Dict scope;
      if (s.names.size() == 1) {
        scope[s.names[0]] = items[i];
      } else {
        const Value& it = items[i];
        if (it.t != T::List || it.list->size() != s.names.size())
          src_.fail(s.pos, "cannot unpack a " + std::string(type_name(it)) + " into " +
                               std::to_string(s.names.size()) + " loop variables");
        for (size_t j = 0; j < s.names.size(); ++j) scope[s.names[j]] = (*it.list)[j];
      }
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

  List iterate(const Value& v, size_t pos) const {
    switch (v.t) {
      case T::Undefined: return {};  // Jinja's Undefined iterates as empty
      case T::List: return *v.list;
      case T::Str: return utf8_chars(v.s);
      case T::Dict: {
        List keys;
        for (const auto& kv : *v.dict) keys.push_back(Value::str(kv.first));
        return keys;
      }
      default: src_.fail(pos, std::string("cannot iterate over a ") + type_name(v));
    }
  }

  Value eval(const Expr& e) {
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
    const List chars = obj.t == T::Str ? utf8_chars(obj.s) : List{};
    const List& l = obj.t == T::Str ? chars : *obj.list;
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
    const List l = obj.t == T::Str ? utf8_chars(obj.s) : *obj.list;
    const int64_t n = static_cast<int64_t>(l.size());
    auto norm = [n](int64_t v, int64_t lo, int64_t hi) { return std::clamp(v < 0 ? v + n : v, lo, hi); };
    const int64_t start = given[0] ? (step > 0 ? norm(bound[0], 0, n) : norm(bound[0], -1, n - 1)) : (step > 0 ? 0 : n - 1);
    const int64_t stop = given[1] ? (step > 0 ? norm(bound[1], 0, n) : norm(bound[1], -1, n - 1)) : (step > 0 ? n : -1);
    List r;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) r.push_back(l[i]);
    if (obj.t == T::List) return Value::of(std::move(r));
    std::string s;
    for (const Value& c : r) s += c.s;
    return Value::str(std::move(s));
  }

  Value binary(const std::string& op, const Value& a, const Value& b, size_t pos) {
    auto mismatch = [&]() -> Value {
      src_.fail(pos, "operator '" + op + "' does not apply to " + type_name(a) + " and " + type_name(b));
    };
    if (op == "~") return Value::str(to_str(a) + to_str(b));
    if (op == "==") return Value::boolean(equal(a, b));
    if (op == "!=") return Value::boolean(!equal(a, b));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.t == T::Str && a.t == T::Str) found = b.s.find(a.s) != std::string::npos;
      else if (b.t == T::List) found = std::any_of(b.list->begin(), b.list->end(), [&](const Value& x) { return equal(a, x); });
      else if (b.t == T::Dict) found = a.t == T::Str && b.dict->count(a.s);
      else mismatch();
      return Value::boolean(found != (op == "not in"));
    }
    if (a.t == T::Str && b.t == T::Str) {
      if (op == "+") return Value::str(a.s + b.s);
      if (op == "<") return Value::boolean(a.s < b.s);
      if (op == ">") return Value::boolean(a.s > b.s);
      if (op == "<=") return Value::boolean(a.s <= b.s);
      if (op == ">=") return Value::boolean(a.s >= b.s);
    }
    if (a.t == T::List && b.t == T::List && op == "+") {
      List l = *a.list;
      l.insert(l.end(), b.list->begin(), b.list->end());
      return Value::of(std::move(l));
    }
    auto num = [](const Value& v) { return v.t == T::Int || v.t == T::Bool; };
    if (!num(a) || !num(b)) mismatch();
    const int64_t x = a.t == T::Int ? a.i : a.b, y = b.t == T::Int ? b.i : b.b;
    if (op == "+") return Value::integer(x + y);
    if (op == "-") return Value::integer(x - y);
    if (op == "*") return Value::integer(x * y);
    if (op == "<") return Value::boolean(x < y);
    if (op == ">") return Value::boolean(x > y);
    if (op == "<=") return Value::boolean(x <= y);
    if (op == ">=") return Value::boolean(x >= y);
    if (op == "/") src_.fail(pos, "'/' gives a float, and floats are not supported (use '//')");
    if (y == 0) src_.fail(pos, "integer division by zero");
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
      return ns;
    }
    if (e.name == "range") {
      const auto a = eval_args(e, 0, 1, 3, "range()");
      for (const Value& v : a) if (v.t != T::Int) src_.fail(e.pos, "range() needs integers");
      const int64_t lo = a.size() > 1 ? a[0].i : 0, hi = a.size() > 1 ? a[1].i : a[0].i, step = a.size() > 2 ? a[2].i : 1;
      if (step == 0 || (hi - lo) / step > 100000) src_.fail(e.pos, "range() step is zero or the range is too long");
      List l;
      for (int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) l.push_back(Value::integer(i));
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
        for (size_t f; (f = s.find(from, p)) != std::string::npos; p = f + from.size()) r += s.substr(p, f - p) + to;
        return Value::str(r + s.substr(p));
      }
      if (e.name == "split") {
        const auto a = eval_args(e, 1, 0, 1, what);
        List parts;
        if (a.empty() || a[0].t == T::None) {  // Python: split on whitespace runs, drop empties
          size_t p = 0;
          while ((p = s.find_first_not_of(kSpace, p)) != std::string::npos) {
            const size_t q = std::min(s.find_first_of(kSpace, p), s.size());
            parts.push_back(Value::str(s.substr(p, q - p)));
            p = q;
          }
          return Value::of(std::move(parts));
        }
        const std::string sep = str_arg(a[0], e.pos, what);
        if (sep.empty()) src_.fail(e.pos, "split() with an empty separator");
        size_t p = 0;
        for (size_t f; (f = s.find(sep, p)) != std::string::npos; p = f + sep.size()) parts.push_back(Value::str(s.substr(p, f - p)));
        parts.push_back(Value::str(s.substr(p)));
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
      if (v.t == T::Str) return Value::integer(static_cast<int64_t>(utf8_chars(v.s).size()));
      if (v.t == T::List) return Value::integer(static_cast<int64_t>(v.list->size()));
      if (v.t == T::Dict) return Value::integer(static_cast<int64_t>(v.dict->size()));
      if (v.t == T::Undefined) return Value::integer(0);
      src_.fail(e.pos, std::string("a ") + type_name(v) + " has no length");
    }
    if (f == "tojson") {
      eval_args(e, 1, 0, 0, what);
      if (v.t == T::Undefined) src_.fail(e.pos, "cannot convert an undefined value to JSON");
      return Value::str(to_json(v));
    }
    if (f == "string") return eval_args(e, 1, 0, 0, what), Value::str(to_str(v));
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
      for (size_t k = 0; k < items.size(); ++k) r += (k ? sep : "") + to_str(items[k]);
      return Value::str(r);
    }
    src_.fail(e.pos, "unsupported filter '" + f + "'");
  }

  bool test(const Expr& e) {
    const Value v = eval(*e.args[0]);
    const std::string& t = e.name;
    if (t == "defined") return v.t != T::Undefined;
    if (t == "undefined") return v.t == T::Undefined;
    if (t == "none") return v.t == T::None;
    if (t == "string") return v.t == T::Str;
    if (t == "number" || t == "integer") return v.t == T::Int;
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
};

}  // namespace

std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const std::string& bos_token,
                                const std::string& eos_token) {
  const Source src(tmpl);
  std::vector<Piece> pieces = split_template(src);
  apply_whitespace_rules(pieces, tmpl);
  const Body body = TemplateParser(src, pieces).parse();

  List msgs;
  for (const ChatMessage& m : messages)
    msgs.push_back(Value::of(Dict{{"role", Value::str(m.role)}, {"content", Value::str(m.content)}}));
  Dict globals{{"messages", Value::of(std::move(msgs))},
               {"add_generation_prompt", Value::boolean(add_generation_prompt)},
               {"bos_token", Value::str(bos_token)},
               {"eos_token", Value::str(eos_token)},
               {"tools", Value::none()}};
  Renderer r(src, std::move(globals));
  r.run(body);
  return std::move(r.out);
}

}  // namespace qrun
