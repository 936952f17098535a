// libFuzzer target: a chat template (include/qrun/chat_template.h: lexer, parser, renderer)
// rendered over a short conversation with tools and a tool call (so JSON values, floats
// among them, reach the template). The input is the template text.
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "qrun/chat_template.h"
#include "src/chat/jinja_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  static const std::vector<ChatMessage> messages = {
      {"system", "You are a helpful assistant."},
      {"user", "Hello!"},
      {"assistant", "", {{"call_1", "get_weather", R"({"city": "Paris", "days": 2, "ratio": 0.5, "at": [1e-7, -0.0]})"}}},
      {"tool", "21.5", {}, "call_1"},
      {"assistant", "Hi. How can I help?"},
      {"user", "Tell me a story about {{ braces }} and {% tags %}."},
  };
  static const std::string tools =
      R"([{"type": "function", "function": {"name": "get_weather", "description": "°C", "parameters": {"type": "object",)"
      R"( "properties": {"city": {"enum": ["Paris", null, true]}, "ratio": {"minimum": 1e308, "maximum": 2.5}}}}}])";
  const std::string tmpl(reinterpret_cast<const char*>(data), size);
  try {
    const std::string out = apply_chat_template(tmpl, messages, true, "<s>", "</s>", tools);
    if (out.size() > jinja::kMaxOutputBytes) std::abort();  // the output limit did not hold
  } catch (const Error&) {
  }
  return 0;
}
