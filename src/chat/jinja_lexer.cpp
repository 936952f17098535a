#include "src/chat/jinja_lexer.h"

#include <cctype>

#include "src/chat/jinja_value.h"

namespace qrun::jinja {

namespace {

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

}  // namespace

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

}  // namespace qrun::jinja
