#include "src/server/anthropic_reply.h"

#include "src/server/anthropic_request.h"
#include "src/server/json_text.h"

namespace qrun::server {

using nlohmann::json;

namespace {

std::string stop_reason(const std::vector<ToolCall>& calls, const ReplyEnd& end) {
  if (end.finish == "length") return "max_tokens";  // also after calls: the last may be cut short
  if (!calls.empty()) return "tool_use";
  return end.stop_string.empty() ? "end_turn" : "stop_sequence";
}

json usage_json(const Usage& u) {
  return {{"input_tokens", u.prompt - u.cached},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", u.cached},
          {"output_tokens", u.completion}};
}

// A call's arguments are a JSON object (the tool-call reader accepts no other).
json tool_use(const ToolCall& call) {
  json input = json::parse(call.arguments, nullptr, false);
  if (!input.is_object()) input = json::object();
  return {{"type", "tool_use"}, {"id", call.id}, {"name", call.name}, {"input", std::move(input)}};
}

std::string event(const char* name, const json& data) { return std::string("event: ") + name + "\ndata: " + dump(data) + "\n\n"; }

json stop_fields(const std::vector<ToolCall>& calls, const ReplyEnd& end) {
  return {{"stop_reason", stop_reason(calls, end)},
          {"stop_sequence", end.stop_string.empty() ? json(nullptr) : json(end.stop_string)}};
}

}  // namespace

AnthropicReply::AnthropicReply(std::string id, std::string model, int prompt_tokens)
    : id_(std::move(id)), model_(std::move(model)), prompt_tokens_(prompt_tokens) {}

json AnthropicReply::whole(const std::string& content, const std::string& reasoning, const std::vector<ToolCall>& calls,
                           const ReplyEnd& end, const json&) const {
  json blocks = json::array();
  if (!reasoning.empty()) blocks.push_back({{"type", "thinking"}, {"thinking", reasoning}, {"signature", ""}});
  if (!content.empty() || (reasoning.empty() && calls.empty())) blocks.push_back({{"type", "text"}, {"text", content}});
  for (const ToolCall& call : calls) blocks.push_back(tool_use(call));
  json message = {{"id", id_}, {"type", "message"}, {"role", "assistant"}, {"model", model_}, {"content", std::move(blocks)}};
  message.update(stop_fields(calls, end));
  message["usage"] = usage_json(end.usage);
  return message;
}

std::string AnthropicReply::open() {
  const json message = {{"id", id_},
                        {"type", "message"},
                        {"role", "assistant"},
                        {"model", model_},
                        {"content", json::array()},
                        {"stop_reason", nullptr},
                        {"stop_sequence", nullptr},
                        {"usage", usage_json(Usage{prompt_tokens_, 0, 0})}};
  return event("message_start", {{"type", "message_start"}, {"message", message}});
}

std::string AnthropicReply::end_block() {
  if (open_ == Block::None) return {};
  open_ = Block::None;
  return event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
}

std::string AnthropicReply::delta(Block block, const std::string& text) {
  if (text.empty()) return {};
  std::string out;
  const bool thinking = block == Block::Thinking;
  if (open_ != block) {
    out += end_block();
    open_ = block;
    const json start = thinking ? json{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}} : json{{"type", "text"}, {"text", ""}};
    out += event("content_block_start", {{"type", "content_block_start"}, {"index", ++index_}, {"content_block", start}});
  }
  const json d = thinking ? json{{"type", "thinking_delta"}, {"thinking", text}} : json{{"type", "text_delta"}, {"text", text}};
  return out + event("content_block_delta", {{"type", "content_block_delta"}, {"index", index_}, {"delta", d}});
}

std::string AnthropicReply::reasoning(const std::string& text) { return delta(Block::Thinking, text); }

std::string AnthropicReply::text(const std::string& text, const json&) { return delta(Block::Text, text); }

std::string AnthropicReply::close(const std::vector<ToolCall>& calls, const ReplyEnd& end, const json&) {
  std::string out = end_block();
  if (index_ < 0 && calls.empty()) {  // an empty reply: one empty text block, as whole() gives
    const json start = {{"type", "text"}, {"text", ""}};
    out += event("content_block_start", {{"type", "content_block_start"}, {"index", ++index_}, {"content_block", start}});
    out += event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
  }
  for (const ToolCall& call : calls) {
    json start = tool_use(call);
    const std::string input = dump(start["input"]);
    start["input"] = json::object();
    out += event("content_block_start", {{"type", "content_block_start"}, {"index", ++index_}, {"content_block", start}});
    out += event("content_block_delta", {{"type", "content_block_delta"},
                                         {"index", index_},
                                         {"delta", {{"type", "input_json_delta"}, {"partial_json", input}}}});
    out += event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_}});
  }
  out += event("message_delta", {{"type", "message_delta"}, {"delta", stop_fields(calls, end)}, {"usage", usage_json(end.usage)}});
  return out + event("message_stop", {{"type", "message_stop"}});
}

std::string AnthropicReply::failed(const std::string& message) {
  return event("error", json::parse(anthropic_error_body(500, message)));
}

}  // namespace qrun::server
