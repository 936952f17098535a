// Chat-template parsing: tags into statements and expressions (recursive descent with
// Jinja's precedence). Unsupported constructs fail here, naming the construct and where,
// and so do blocks nested past kMaxNesting and expressions past kMaxExprDepth, so that
// neither parsing, rendering nor freeing the tree can run out of stack.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "src/chat/jinja_lexer.h"
#include "src/chat/jinja_value.h"

namespace qrun::jinja {

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
  int depth = 1;         // of this subtree, at most kMaxExprDepth (the parser checks)
};

struct Stmt;
using Body = std::vector<Stmt>;
struct Stmt {
  enum class K { Text, Out, If, For, Set, Break, Continue, Macro } k;
  size_t pos = 0;
  std::string text;                // Text
  ExprP expr;                      // Out value, For iterable, Set value (null for a block set)
  ExprP filter;                    // For: the loop filter (`for x in xs if cond`), or null
  std::vector<std::string> names;  // For: loop variables; Set: {name} or {namespace, attribute}; Macro: name, parameters
  std::vector<std::pair<ExprP, Body>> branches;  // If: condition (null for else) and body
  Body body, else_body;            // For body and else; block Set body; Macro body
  std::vector<ExprP> defaults;     // Macro: each parameter's default value, or null
};

Body parse_template(const Source& src, const std::vector<Piece>& pieces);

}  // namespace qrun::jinja
