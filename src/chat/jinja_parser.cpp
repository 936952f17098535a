#include "src/chat/jinja_parser.h"

#include <algorithm>

namespace qrun::jinja {

namespace {

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
    const Nest nest(*this);
    ExprP e = or_expr();
    while (is_name("if")) {
      auto c = node(Expr::K::Cond, next().pos);
      c->args.push_back(or_expr());
      c->args.push_back(std::move(e));
      c->args.push_back(accept_name("else") ? parse() : nullptr);
      e = sealed(std::move(c));
    }
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
  // Bounds the parser's own recursion: brackets, `not`, unary minus and conditional
  // chains each recurse once per level.
  struct Nest {
    explicit Nest(ExprParser& p) : p_(p) {
      if (++p_.depth_ > kMaxNesting)
        p_.src_.fail(p_.peek().pos, "expression nested more than the limit of " + std::to_string(kMaxNesting) + " levels");
    }
    ~Nest() { --p_.depth_; }
    ExprParser& p_;
  };
  // Records a finished node's subtree depth; left-assoc chains (`a + b + c ...`) and
  // postfix chains build deep trees without recursing, so the tree is checked too.
  ExprP sealed(ExprP e) {
    int d = 0;
    for (const auto& a : e->args)
      if (a) d = std::max(d, a->depth);
    for (const auto& [k, v] : e->kwargs) d = std::max(d, v->depth);
    e->depth = d + 1;
    if (e->depth > kMaxExprDepth)
      src_.fail(e->pos, "expression more than the limit of " + std::to_string(kMaxExprDepth) + " operations deep");
    return e;
  }
  ExprP binary_chain(Expr::K k, const char* word, ExprP (ExprParser::*sub)()) {
    ExprP e = (this->*sub)();
    while (is_name(word)) {
      auto b = node(k, next().pos, word);
      b->args.push_back(std::move(e));
      b->args.push_back((this->*sub)());
      e = sealed(std::move(b));
    }
    return e;
  }
  ExprP bin(ExprP l, const Tok& op, std::string name, ExprP (ExprParser::*sub)()) {
    auto b = node(Expr::K::Bin, op.pos, std::move(name));
    b->args.push_back(std::move(l));
    b->args.push_back((this->*sub)());
    return sealed(std::move(b));
  }
  ExprP not_expr() {
    if (!is_name("not")) return compare();
    const Nest nest(*this);
    auto n = node(Expr::K::Not, next().pos);
    n->args.push_back(not_expr());
    return sealed(std::move(n));
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
      const Nest nest(*this);
      e = node(Expr::K::Neg, next().pos);
      e->args.push_back(unary(false));
      e = sealed(std::move(e));
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
          e = sealed(std::move(m));
        } else {
          auto a = node(Expr::K::Attr, pos, std::move(name));
          a->args.push_back(std::move(e));
          e = sealed(std::move(a));
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
        e = sealed(std::move(s));
      } else if (is_op("(")) {
        if (e->k != Expr::K::Var) src_.fail(peek().pos, "only named functions can be called");
        e->k = Expr::K::Call;
        call_args(*e);
        e = sealed(std::move(e));
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
        e = sealed(std::move(f));
      } else if (is_name("is")) {
        auto t = node(Expr::K::Test, next().pos);
        t->negated = accept_name("not");
        t->name = expect_name();
        t->args.push_back(std::move(e));
        e = sealed(std::move(t));
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
      return sealed(std::move(e));
    }
    unexpected("an expression");
  }

  const Source& src_;
  const std::vector<Tok>& toks_;
  size_t k_;
  int depth_ = 0;
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
    // Every statement with a body recurses into parse_until: bound the nesting.
    struct Nest {
      Nest(TemplateParser& p, const Tok& kw) : p_(p) {
        if (++p_.block_depth_ > kMaxNesting)
          p_.src_.fail(kw.pos, "blocks nested more than the limit of " + std::to_string(kMaxNesting) + " levels");
      }
      ~Nest() { --p_.block_depth_; }
      TemplateParser& p_;
    } nest(*this, kw);
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
      if (ep.accept_name("if")) s.filter = ep.or_expr();
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
    } else if (w == "macro") {
      // {% macro name(a, b=default) %}...{% endmacro %}: called as a function whose value
      // is the body's rendered text.
      s.k = Stmt::K::Macro;
      s.names.push_back(ep.expect_name());
      ep.expect_op("(");
      while (!ep.accept_op(")")) {
        if (s.names.size() > 1) ep.expect_op(",");
        s.names.push_back(ep.expect_name());
        s.defaults.push_back(ep.accept_op("=") ? ep.parse() : nullptr);
      }
      ep.expect_end();
      const int loops = std::exchange(loop_depth_, 0);  // a loop around the definition is not the body's
      parse_until(s.body, {"endmacro"}, "macro", kw.pos);
      loop_depth_ = loops;
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
  int block_depth_ = 0;
  std::unique_ptr<ExprParser> tail_;
};

}  // namespace

Body parse_template(const Source& src, const std::vector<Piece>& pieces) { return TemplateParser(src, pieces).parse(); }

}  // namespace qrun::jinja
