// libFuzzer target: a chat template (include/qrun/chat_template.h: lexer, parser, renderer)
// rendered over a short conversation. The input is the template text.
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
      {"assistant", "Hi. How can I help?"},
      {"user", "Tell me a story about {{ braces }} and {% tags %}."},
  };
  const std::string tmpl(reinterpret_cast<const char*>(data), size);
  try {
    const std::string out = apply_chat_template(tmpl, messages, true, "<s>", "</s>");
    if (out.size() > jinja::kMaxOutputBytes) std::abort();  // the output limit did not hold
  } catch (const Error&) {
  }
  return 0;
}
