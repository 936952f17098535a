// llama.cpp's GBNF grammars (`--grammar`, `--grammar-file`, the server's "grammar" field)
// compiled to a byte Grammar. The notation: `name ::= alternatives`, one rule per line
// (parentheses may span lines), `|` between alternatives, "literals" and [character
// classes] (ranges, `^` negation) over Unicode code points with the escapes \n \r \t,
// backslash, quote, brackets, \xHH \uHHHH \UHHHHHHHH, `.` for any character, ( groups ),
// the postfixes * + ? {m} {m,} {m,n} (up to 1000), and # comments. The grammar starts at
// `root`. Code points become their UTF-8 bytes (a class becomes byte-range sequences), so
// the recognizer takes exactly the texts whose characters the grammar takes.
#pragma once

#include <memory>
#include <string_view>

#include "src/runtime/grammar.h"

namespace qrun {

// Throws qrun::Error naming the line and column ("GBNF grammar at line 3, column 14:
// unknown rule \"valu\"") for text outside the notation, a rule used but not defined,
// one defined twice, no root, or a rule that reaches itself before reading a byte.
std::shared_ptr<const Grammar> gbnf_grammar(std::string_view text);

}  // namespace qrun
