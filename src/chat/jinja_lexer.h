// Chat-template lexing: the template split into text and tags, each tag into tokens,
// with Jinja's whitespace control applied (trim_blocks and lstrip_blocks on, as in
// transformers). Source turns an offset into a line/column error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "qrun/error.h"

namespace qrun::jinja {

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

std::vector<Piece> split_template(const Source& src);
void apply_whitespace_rules(std::vector<Piece>& ps, const std::string& t);

}  // namespace qrun::jinja
