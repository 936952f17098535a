// libFuzzer target: the GBNF grammar parser (src/runtime/gbnf_grammar.cpp) and the grammar
// recognizer. The input is a grammar, a NUL byte, then a text fed byte by byte. A grammar
// may be refused (qrun::Error) but nothing may crash or hang, and the recognizer must keep
// its all-or-nothing promise: a refused byte leaves the state as it was.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "qrun/error.h"
#include "src/runtime/gbnf_grammar.h"
#include "src/runtime/grammar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view text = split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
  std::optional<qrun::GrammarPrefix> start;
  try {  // the parser and the recognizer's start (too ambiguous a start) may refuse a grammar
    start.emplace(qrun::gbnf_grammar(input.substr(0, split)));
  } catch (const qrun::Error&) {
    return 0;
  }
  qrun::GrammarPrefix& p = *start;
  for (const char c : text) {
    const bool was_accepted = p.accepted(), was_complete = p.complete();
    if (!p.feed(static_cast<uint8_t>(c)) && (p.accepted() != was_accepted || p.complete() != was_complete)) std::abort();
  }
  return 0;
}
