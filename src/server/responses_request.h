// OpenAI's Responses API requests (POST /v1/responses, what newer OpenAI SDKs, the Agents
// SDK and Codex send), read into the body of the chat request they mean, which
// parse_request then reads: one path for chat templates, tools, JSON formats and reasoning.
// qserve keeps no responses, so the conversation comes whole in `input` (store is off;
// previous_response_id and conversation are refused).
//
// - instructions is the first (system) message; input is a string (one user message) or
//   items: messages (role user, assistant, system or developer; content a string or
//   input_text / output_text parts), function_call (an assistant's call: call_id, name,
//   arguments), function_call_output (a tool message for call_id) and reasoning (its
//   reasoning_text or summary text, the next assistant turn's reasoning_content). Images,
//   files and items of tools qrun cannot run are refused.
// - tools [{"type": "function", name, description, parameters}] become functions; hosted
//   tools (web_search, file_search, code_interpreter, mcp...) are left out as qrun cannot
//   run them. tool_choice auto/none/required/{"type": "function", "name"},
//   parallel_tool_calls.
// - max_output_tokens (a ceiling), temperature, top_p, stream, text.format (text,
//   json_object, json_schema), reasoning.effort "none" (enable_thinking false; any other
//   effort true), and llama.cpp's extensions (seed, grammar, min_p, penalties, ignore_eos,
//   chat_template_kwargs).
// Malformed bodies are an ApiError(400) naming the field as the Responses API spells it.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "src/server/request.h"

namespace qrun::server {

struct ResponsesRequest {
  CompletionRequest chat;
  nlohmann::json echoed;  // the request's settings a response object repeats (instructions, tools, ...)
};

ResponsesRequest parse_responses_request(std::string_view body);

}  // namespace qrun::server
