// Anthropic's Messages API requests (POST /v1/messages and /v1/messages/count_tokens, as
// llama.cpp's server takes them for Claude Code and other Anthropic clients), read into
// the body of the OpenAI chat request they mean, which parse_request then reads: one
// path for chat templates, tools, grammars and reasoning.
//
// - system (a string or text blocks) becomes the first message; a message's content is a
//   string or blocks: text, an assistant's thinking (its reasoning_content) and tool_use
//   (its tool_calls, input as the arguments), a user's tool_result (a tool message
//   answering tool_use_id; is_error prefixes "Error: "). Text blocks join with a blank line.
//   Images and documents are refused: qrun's models read text.
// - tools [{name, description, input_schema}] become functions; tools of Anthropic's own
//   kinds (web search, code execution: a "type" other than "custom") are left out, as
//   qrun cannot run them. tool_choice auto/any/tool/none and disable_parallel_tool_use map
//   to OpenAI's. thinking {"type": "enabled"|"disabled"} sets the template variable
//   enable_thinking (Qwen3's switch); reasoning always comes back as thinking blocks.
// - stop_sequences, max_tokens, temperature, top_p, top_k, stream; output_format
//   {"type": "json_schema", "schema"} as a JSON-schema response_format; llama.cpp's
//   extensions (seed, grammar, min_p, penalties, ignore_eos, chat_template_kwargs) pass.
// Everything malformed is an ApiError(400) naming the field as Anthropic's API spells it.
#pragma once

#include <string>
#include <string_view>

#include "src/server/request.h"

namespace qrun::server {

CompletionRequest parse_anthropic_request(std::string_view body);

// Anthropic's error body: {"type": "error", "error": {"type", "message"}}.
std::string anthropic_error_body(int status, const std::string& message);

}  // namespace qrun::server
