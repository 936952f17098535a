// Chat-template rendering: Hugging Face models ship a Jinja2 "chat_template" that turns a
// conversation into the prompt text the model was trained on. qrun has no Python, so this is
// a small interpreter for the Jinja subset those templates use; anything outside it fails
// loudly (qrun::Error naming the construct and where it is) rather than rendering a prompt
// that silently differs from the reference.
#pragma once

#include <string>
#include <vector>

namespace qrun {

// A call the assistant made to one of the tools it was offered.
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as OpenAI's API carries it
};

struct ChatMessage {
  std::string role;
  std::string content;
  std::vector<ToolCall> tool_calls = {};  // an assistant turn that called tools
  std::string tool_call_id = {};         // a tool turn: the call it answers
  std::string reasoning_content = {};    // an assistant turn's reasoning, apart from content ("": none given)
};

// Renders `tmpl` the way transformers' apply_chat_template does (trim_blocks and
// lstrip_blocks on), with the variables messages, add_generation_prompt, bos_token,
// eos_token and tools; enable_thinking is left undefined. `tools_json` is the JSON text
// of OpenAI's tools list ("" for none: tools is none). A message's tool calls reach the
// template as transformers documents them: tool_calls[i].function.arguments a mapping
// (the JSON text when it is not an object); reasoning_content, and `thinking` as
// gpt-oss's template names it, are defined only where a message has it (Qwen3's template
// then writes it in <think>). `kwargs_json` is a JSON object of more
// variables, as transformers' apply_chat_template(**kwargs) and llama.cpp's
// chat_template_kwargs pass them (Qwen3's {"enable_thinking": false}); "" for none.
// Throws qrun::Error for a syntax error, an unsupported construct, or raise_exception(),
// and for a template that exceeds a limit (src/chat/jinja_value.h: nesting of blocks,
// expressions and values, string and output size, total steps), naming the limit.
std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const std::string& bos_token,
                                const std::string& eos_token, const std::string& tools_json = {},
                                const std::string& kwargs_json = {});

// Throws qrun::Error for a syntax error or an unsupported construct: what can be told
// before any conversation is rendered.
void check_chat_template(const std::string& tmpl);

}  // namespace qrun
