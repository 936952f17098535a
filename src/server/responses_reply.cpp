#include "src/server/responses_reply.h"

#include <ctime>

#include "src/server/json_text.h"

namespace qrun::server {

using nlohmann::json;

namespace {

json usage_json(const Usage& u) {
  return {{"input_tokens", u.prompt},
          {"input_tokens_details", {{"cached_tokens", u.cached}}},
          {"output_tokens", u.completion},
          {"total_tokens", u.prompt + u.completion}};
}

const char* status_of(const ReplyEnd& end) { return end.finish == "length" ? "incomplete" : "completed"; }

}  // namespace

ResponsesReply::ResponsesReply(std::string id, std::string model, json echoed)
    : id_(std::move(id)),
      tail_(id_.substr(id_.find('_') + 1)),
      model_(std::move(model)),
      echoed_(std::move(echoed)),
      created_(static_cast<int64_t>(std::time(nullptr))) {}

json ResponsesReply::response(const char* status, const json& output, const ReplyEnd* end) const {
  json r = {{"id", id_},
            {"object", "response"},
            {"created_at", created_},
            {"status", status},
            {"background", false},
            {"error", nullptr},
            {"incomplete_details", nullptr},
            {"model", model_},
            {"output", output},
            {"previous_response_id", nullptr},
            {"store", false},
            {"truncation", "disabled"},
            {"usage", nullptr}};
  r.update(echoed_);
  if (end) {
    r["usage"] = usage_json(end->usage);
    if (end->finish == "length") r["incomplete_details"] = {{"reason", "max_output_tokens"}};
  }
  return r;
}

// Items' ids share the response's tail and say their place in the output.
std::string ResponsesReply::item_id(const char* prefix, size_t index) const {
  return prefix + tail_ + "_" + std::to_string(index);
}

json ResponsesReply::item(Item kind, size_t index, const std::string& text, bool done) const {
  const char* status = done ? "completed" : "in_progress";
  if (kind == Item::Reasoning) {
    const json content = done ? json::array({{{"type", "reasoning_text"}, {"text", text}}}) : json::array();
    return {{"type", "reasoning"}, {"id", item_id("rs_", index)}, {"summary", json::array()}, {"content", content}, {"status", status}};
  }
  const json content = done ? json::array({{{"type", "output_text"}, {"text", text}, {"annotations", json::array()}, {"logprobs", json::array()}}})
                            : json::array();
  return {{"type", "message"}, {"id", item_id("msg_", index)}, {"status", status}, {"role", "assistant"}, {"content", content}};
}

json ResponsesReply::call_item(const ToolCall& call, size_t index, bool done) const {
  return {{"type", "function_call"},
          {"id", item_id("fc_", index)},
          {"call_id", call.id},
          {"name", call.name},
          {"arguments", done ? call.arguments : ""},
          {"status", done ? "completed" : "in_progress"}};
}

json ResponsesReply::whole(const std::string& content, const std::string& reasoning, const std::vector<ToolCall>& calls,
                           const ReplyEnd& end, const json&) const {
  json output = json::array();
  if (!reasoning.empty()) output.push_back(item(Item::Reasoning, output.size(), reasoning, true));
  if (!content.empty() || (reasoning.empty() && calls.empty())) output.push_back(item(Item::Message, output.size(), content, true));
  for (const ToolCall& call : calls) output.push_back(call_item(call, output.size(), true));
  return response(status_of(end), output, &end);
}

std::string ResponsesReply::event(const char* type, json data) {
  data["type"] = type;
  data["sequence_number"] = sequence_++;
  return std::string("event: ") + type + "\ndata: " + dump(data) + "\n\n";
}

std::string ResponsesReply::open() {
  std::string out = event("response.created", {{"response", response("in_progress", json::array(), nullptr)}});
  return out + event("response.in_progress", {{"response", response("in_progress", json::array(), nullptr)}});
}

// The place of the open item's text: {item_id, output_index, content_index}, with `more`.
json ResponsesReply::at(json more) const {
  more["item_id"] = item_id(open_ == Item::Reasoning ? "rs_" : "msg_", output_.size());
  more["output_index"] = output_.size();
  more["content_index"] = 0;
  return more;
}

std::string ResponsesReply::begin_item(Item kind) {
  std::string out = end_item();
  open_ = kind;
  out += event("response.output_item.added", {{"output_index", output_.size()}, {"item", item(kind, output_.size(), "", false)}});
  const json part = kind == Item::Reasoning ? json{{"type", "reasoning_text"}, {"text", ""}}
                                            : json{{"type", "output_text"}, {"text", ""}, {"annotations", json::array()}, {"logprobs", json::array()}};
  return out + event("response.content_part.added", at({{"part", part}}));
}

std::string ResponsesReply::end_item() {
  if (open_ == Item::None) return {};
  const json done = item(open_, output_.size(), open_text_, true);
  std::string out;
  if (open_ == Item::Reasoning) out += event("response.reasoning_text.done", at({{"text", open_text_}}));
  else out += event("response.output_text.done", at({{"text", open_text_}, {"logprobs", json::array()}}));
  out += event("response.content_part.done", at({{"part", done["content"][0]}}));
  out += event("response.output_item.done", {{"output_index", output_.size()}, {"item", done}});
  output_.push_back(done);
  open_ = Item::None;
  open_text_.clear();
  return out;
}

std::string ResponsesReply::delta(Item kind, const std::string& text) {
  if (text.empty()) return {};
  std::string out = open_ == kind ? std::string() : begin_item(kind);
  open_text_ += text;
  if (kind == Item::Reasoning) return out + event("response.reasoning_text.delta", at({{"delta", text}}));
  return out + event("response.output_text.delta", at({{"delta", text}, {"logprobs", json::array()}}));
}

std::string ResponsesReply::reasoning(const std::string& text) { return delta(Item::Reasoning, text); }

std::string ResponsesReply::text(const std::string& text, const json&) { return delta(Item::Message, text); }

std::string ResponsesReply::close(const std::vector<ToolCall>& calls, const ReplyEnd& end, const json&) {
  std::string out = end_item();
  if (output_.empty() && calls.empty()) {  // an empty reply: one empty message, as whole() gives
    out += begin_item(Item::Message);
    out += end_item();
  }
  for (const ToolCall& call : calls) {
    const size_t index = output_.size();
    const json done = call_item(call, index, true);
    out += event("response.output_item.added", {{"output_index", index}, {"item", call_item(call, index, false)}});
    out += event("response.function_call_arguments.delta", {{"item_id", done["id"]}, {"output_index", index}, {"delta", call.arguments}});
    out += event("response.function_call_arguments.done",
                 {{"item_id", done["id"]}, {"output_index", index}, {"name", call.name}, {"arguments", call.arguments}});
    out += event("response.output_item.done", {{"output_index", index}, {"item", done}});
    output_.push_back(done);
  }
  const char* status = status_of(end);
  return out + event(end.finish == "length" ? "response.incomplete" : "response.completed", {{"response", response(status, output_, &end)}});
}

std::string ResponsesReply::failed(const std::string& message) {
  json r = response("failed", output_, nullptr);
  r["error"] = {{"code", "server_error"}, {"message", message}};
  return event("response.failed", {{"response", std::move(r)}});
}

}  // namespace qrun::server
