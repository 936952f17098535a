#include "src/server/openai_reply.h"

#include <ctime>

#include "src/server/api_error.h"
#include "src/server/json_text.h"

namespace qrun::server {

using nlohmann::json;

namespace {

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt},
          {"completion_tokens", u.completion},
          {"total_tokens", u.prompt + u.completion},
          {"prompt_tokens_details", {{"cached_tokens", u.cached}}}};
}

json tool_calls_json(const std::vector<ToolCall>& calls, bool indexed) {
  json out = json::array();
  for (size_t i = 0; i < calls.size(); ++i) {
    json c = {{"id", calls[i].id}, {"type", "function"},
              {"function", {{"name", calls[i].name}, {"arguments", calls[i].arguments}}}};
    if (indexed) c["index"] = i;  // a stream's deltas say which call they add to
    out.push_back(std::move(c));
  }
  return out;
}

// A reply that ran out of tokens says so, calls or not (a last call may be cut short).
std::string finish_with_calls(const std::string& finish, const std::vector<ToolCall>& calls) {
  return calls.empty() || finish == "length" ? finish : "tool_calls";
}

std::string event(const json& j) { return "data: " + dump(j) + "\n\n"; }

constexpr const char* kDone = "data: [DONE]\n\n";

}  // namespace

OpenAiReply::OpenAiReply(Endpoint endpoint, std::string id, std::string model, std::string echo, bool include_usage)
    : endpoint_(endpoint),
      id_(std::move(id)),
      model_(std::move(model)),
      echo_(std::move(echo)),
      created_(static_cast<int64_t>(std::time(nullptr))),
      include_usage_(include_usage) {}

json OpenAiReply::base(const char* object) const {
  return {{"id", id_}, {"object", object}, {"created", created_}, {"model", model_}};
}

json OpenAiReply::chunk(const std::string& text, const json& finish, bool first, const json& logprobs) const {
  json c;
  if (endpoint_ == Endpoint::ChatCompletions) {
    c = base("chat.completion.chunk");
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (first || !text.empty()) delta["content"] = text;
    c["choices"] = json::array({{{"index", 0}, {"delta", delta}, {"logprobs", logprobs}, {"finish_reason", finish}}});
  } else {
    c = base("text_completion");
    c["choices"] = json::array({{{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", finish}}});
  }
  return c;
}

json OpenAiReply::whole(const std::string& content, const std::string& reasoning, const std::vector<ToolCall>& calls,
                        const ReplyEnd& end, const json& logprobs) const {
  json r;
  if (endpoint_ == Endpoint::ChatCompletions) {
    r = base("chat.completion");
    json message = {{"role", "assistant"}, {"content", content}};
    if (!reasoning.empty()) message["reasoning_content"] = reasoning;
    if (!calls.empty()) {
      if (content.empty()) message["content"] = nullptr;
      message["tool_calls"] = tool_calls_json(calls, false);
    }
    r["choices"] = json::array(
        {{{"index", 0}, {"message", message}, {"logprobs", logprobs}, {"finish_reason", finish_with_calls(end.finish, calls)}}});
  } else {
    r = base("text_completion");
    r["choices"] = json::array({{{"index", 0}, {"text", echo_ + content}, {"logprobs", logprobs}, {"finish_reason", end.finish}}});
  }
  r["usage"] = usage_json(end.usage);
  return r;
}

std::string OpenAiReply::open() { return event(chunk(echo_, nullptr, true, nullptr)); }

std::string OpenAiReply::reasoning(const std::string& text) {
  json c = base("chat.completion.chunk");
  c["choices"] = json::array({{{"index", 0}, {"delta", {{"reasoning_content", text}}}, {"finish_reason", nullptr}}});
  return event(c);
}

std::string OpenAiReply::text(const std::string& text, const json& logprobs) {
  return text.empty() ? std::string() : event(chunk(text, nullptr, false, logprobs));
}

std::string OpenAiReply::close(const std::vector<ToolCall>& calls, const ReplyEnd& end, const json& logprobs) {
  std::string out;
  if (!calls.empty()) {
    json c = base("chat.completion.chunk");
    c["choices"] = json::array({{{"index", 0}, {"delta", {{"tool_calls", tool_calls_json(calls, true)}}}, {"finish_reason", nullptr}}});
    out += event(c);
  }
  out += event(chunk("", finish_with_calls(end.finish, calls), false, logprobs));
  if (include_usage_) {
    json u = base(endpoint_ == Endpoint::ChatCompletions ? "chat.completion.chunk" : "text_completion");
    u["choices"] = json::array();
    u["usage"] = usage_json(end.usage);
    out += event(u);
  }
  return out + kDone;
}

std::string OpenAiReply::failed(const std::string& message) {
  return event(json::parse(error_body(500, message))) + kDone;
}

}  // namespace qrun::server
