// libFuzzer target: the JSON schema compiler (src/runtime/json_schema_grammar.cpp, also
// as tagged JSON's spec) and the grammar recognizer. The input is a schema, a NUL byte, then a text fed byte by byte. A
// schema may be refused (qrun::Error) but nothing may crash or hang, and a text the grammar
// takes whole and calls complete must be JSON to nlohmann.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "src/runtime/grammar.h"
#include "src/runtime/json_schema_grammar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::string_view schema = input.substr(0, split);
  const std::string_view text = split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
  try {  // the same input as tagged JSON's spec: refused or fed, never a crash
    qrun::GrammarPrefix tagged(qrun::tagged_json_grammar(schema));
    for (const char c : text)
      if (!tagged.feed(static_cast<uint8_t>(c))) break;
  } catch (const qrun::Error&) {
  }
  std::optional<qrun::GrammarPrefix> start;
  try {  // the schema compiler and the recognizer's start (too ambiguous a start) may refuse
    start.emplace(qrun::json_schema_grammar(schema));
  } catch (const qrun::Error&) {
    return 0;
  }
  qrun::GrammarPrefix& p = *start;
  for (const char c : text)
    if (!p.feed(static_cast<uint8_t>(c))) return 0;
  if (p.complete() && !nlohmann::json::accept(text)) std::abort();
  return 0;
}
