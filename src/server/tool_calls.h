// Tool calls in the forms models were trained on (their chat templates show it):
// - Hermes (Qwen2.5, Qwen3, Hermes 2/3, SmolLM3), once per call:
//     <tool_call>
//     {"name": "get_weather", "arguments": {"city": "Paris"}}
//     </tool_call>
// - Llama 3.1-3.3 (JSON tool calling): the whole reply is one call,
//     {"name": "get_weather", "parameters": {"city": "Paris"}}
//   sometimes after <|python_tag|>.
// - Mistral (7B v0.3, Nemo, Small 3.1): the whole reply is a list of calls,
//     [TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]
//   ([TOOL_CALLS] is a control token: the reply's text may lack it).
// - Mistral's later templates (Small 3.2, Magistral, Devstral 2507, Ministral 3), after
//   any text, once per call:
//     [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}
//   or with the call's id, get_weather[CALL_ID]a1b2c3d4e[ARGS]{...} (control tokens the
//   server keeps in the reply's text: call_markers()).
// - gpt-oss (harmony): a message to functions.NAME in the commentary channel, read by
//   src/chat/harmony_reply.h.
// The server finds the calls in a reply and answers with OpenAI's tool_calls; when a call
// is required it starts the reply as a call begins and holds the JSON to a schema of the
// offered tools.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qrun/chat_template.h"

namespace qrun::server {

inline constexpr std::string_view kToolCallOpen = "<tool_call>";

enum class ToolCallForm { None, Hermes, LlamaJson, MistralJson, MistralArgs, Harmony };

// The form a chat template writes earlier calls in (and so teaches); None when it
// writes neither.
ToolCallForm tool_call_form(const std::string& tmpl);

// What the prompt writes of a required call before the model goes on: Hermes's opening
// tag and line break, Mistral's [TOOL_CALLS], harmony's header up to the tool's name;
// nothing for Llama's bare JSON.
std::string_view required_call_start(ToolCallForm form);

// The special tokens whose text a reply must keep to be read: Mistral's [TOOL_CALLS],
// [CALL_ID] and [ARGS] in the form that has text before calls and no other end to a
// call's name.
std::vector<std::string_view> call_markers(ToolCallForm form);

// A reply split into its text and its calls. Hermes: each well-formed block ({"name":
// string, "arguments" or "parameters": object}, the closing tag optional at the end of
// the reply) becomes a call (arguments as compact JSON, ids left empty) and leaves the
// text; a block that is not stays text. Llama: a reply that is such an object (after
// whitespace and <|python_tag|>) is one call and no text; Mistral: a reply that is a list
// of them (after [TOOL_CALLS]) is its calls; Mistral's [ARGS] form: each [TOOL_CALLS]
// opens a block that runs to the next one or the end, read as Hermes's are. Without calls
// the text is the reply unchanged.
struct ParsedReply {
  std::string content;
  std::vector<ToolCall> calls;
};
ParsedReply parse_tool_calls(std::string_view reply, ToolCallForm form = ToolCallForm::Hermes);

// How much of a reply so far is text whatever follows: up to the first block, less a
// tail that could be the start of one. A stream sends this much as content.
size_t plain_text_length(std::string_view reply, ToolCallForm form = ToolCallForm::Hermes);

// A reply as it streams: text goes out as soon as it cannot be the start of a call.
// `start` is what the prompt already wrote of the reply (a required call's opening tag):
// read with the reply, never sent.
class ToolCallStream {
 public:
  explicit ToolCallStream(std::string start = {}, ToolCallForm form = ToolCallForm::Hermes);
  std::string feed(std::string_view text);  // the content to send now
  ParsedReply finish() const;               // the content not sent yet, and the calls

 private:
  ToolCallForm form_;
  std::string reply_;
  size_t sent_;   // nothing before it can begin a call: each piece is searched from here
  bool in_call_;  // a call has begun: the rest waits for finish()
  bool plain_ = false;  // Llama, Mistral: the reply began as text, so no call follows
};

// The JSON schema of one call (the block's JSON) to one of `tools` (OpenAI's list), or
// to the one named `only` when it is not empty: {"name": const, "arguments" (Llama:
// "parameters"): the tool's parameters}, anyOf over the tools. Mistral: a list of such
// calls, at least one, and one at most unless `parallel`. Not for MistralArgs, whose
// calls are not JSON: tool_call_tagged_json().
std::string tool_call_schema(const nlohmann::ordered_json& tools, const std::string& only,
                             ToolCallForm form = ToolCallForm::Hermes, bool parallel = true);

// The calls whose name is not JSON, to `tools` (or the one named `only`), as
// GrammarConstraint::set_tagged_json's spec. Mistral's [ARGS] form, after a prompt that
// ends with [TOOL_CALLS]: `name[ARGS]` and the arguments its parameters accept, then more
// after [TOOL_CALLS] when `parallel`. Harmony, after a prompt that ends with
// `to=functions.`: the name, ` <|constrain|>json<|message|>` and the arguments (one call:
// <|call|> ends the reply).
std::string tool_call_tagged_json(const nlohmann::ordered_json& tools, const std::string& only, ToolCallForm form,
                                  bool parallel);

}  // namespace qrun::server
