// Chat-template rendering: Hugging Face models ship a Jinja2 "chat_template" that turns a
// conversation into the prompt text the model was trained on. qrun has no Python, so this is
// a small interpreter for the Jinja subset those templates use; anything outside it fails
// loudly (qrun::Error naming the construct and where it is) rather than rendering a prompt
// that silently differs from the reference.
#pragma once

#include <string>
#include <vector>

namespace qrun {

struct ChatMessage {
  std::string role;
  std::string content;
};

// Renders `tmpl` the way transformers' apply_chat_template does (trim_blocks and
// lstrip_blocks on), with the variables messages, add_generation_prompt, bos_token,
// eos_token, tools (= none); enable_thinking is left undefined.
// Throws qrun::Error for a syntax error, an unsupported construct, or raise_exception(),
// and for a template that exceeds a limit (src/chat/jinja_value.h: nesting of blocks,
// expressions and values, string and output size, total steps), naming the limit.
std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const std::string& bos_token,
                                const std::string& eos_token);

// Throws qrun::Error for a syntax error or an unsupported construct: what can be told
// before any conversation is rendered.
void check_chat_template(const std::string& tmpl);

}  // namespace qrun
