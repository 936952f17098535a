// Tool calls in the Hermes form that Qwen2.5, Qwen3, Hermes 2/3 and SmolLM3 were trained
// on (their chat templates show it): the model writes
//   <tool_call>
//   {"name": "get_weather", "arguments": {"city": "Paris"}}
//   </tool_call>
// once per call. The server finds these blocks in a reply and answers with OpenAI's
// tool_calls; when a call is required it starts the reply with the opening tag and holds
// the JSON to a schema of the offered tools.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "qrun/chat_template.h"

namespace qrun::server {

inline constexpr std::string_view kToolCallOpen = "<tool_call>";

// Whether a chat template writes tool calls in the Hermes form (and so teaches it).
bool template_writes_tool_calls(const std::string& tmpl);

// A reply split into its text and its calls. Each well-formed block ({"name": string,
// "arguments" or "parameters": object}, the closing tag optional at the end of the
// reply) becomes a call (arguments as compact JSON, ids left empty) and leaves the text;
// a block that is not stays text. Without calls the text is the reply unchanged.
struct ParsedReply {
  std::string content;
  std::vector<ToolCall> calls;
};
ParsedReply parse_tool_calls(std::string_view reply);

// How much of a reply so far is text whatever follows: up to the first block, less a
// tail that could be the start of one. A stream sends this much as content.
size_t plain_text_length(std::string_view reply);

// A reply as it streams: text goes out as soon as it cannot be the start of a call.
// `start` is what the prompt already wrote of the reply (a required call's opening tag):
// read with the reply, never sent.
class ToolCallStream {
 public:
  explicit ToolCallStream(std::string start = {})
      : reply_(std::move(start)), sent_(reply_.size()), in_call_(reply_.find(kToolCallOpen) != std::string::npos) {}
  std::string feed(std::string_view text);  // the content to send now
  ParsedReply finish() const;               // the content not sent yet, and the calls

 private:
  std::string reply_;
  size_t sent_;   // nothing before it can begin a call: each piece is searched from here
  bool in_call_;  // a call has begun: the rest waits for finish()
};

// The JSON schema of one call (the block's JSON) to one of `tools` (OpenAI's list), or
// to the one named `only` when it is not empty: {"name": const, "arguments": the tool's
// parameters}, anyOf over the tools.
std::string tool_call_schema(const nlohmann::ordered_json& tools, const std::string& only);

}  // namespace qrun::server
