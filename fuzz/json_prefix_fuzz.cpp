// libFuzzer target: the JSON-mode recognizer (src/runtime/json_prefix.cpp), differential
// against nlohmann's parser. Bytes are fed one at a time as generation feeds a token's
// bytes; nothing may crash, and a text the recognizer takes whole and calls complete
// must be a JSON object to nlohmann. (The converse does not hold: the recognizer also
// bounds whitespace, number lengths and depth.)
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "src/runtime/json_prefix.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qrun::JsonPrefix p;
  for (size_t i = 0; i < size; ++i)
    if (!p.feed(data[i])) return 0;
  if (!p.complete()) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!nlohmann::json::accept(text) || !nlohmann::json::parse(text).is_object()) std::abort();
  return 0;
}
