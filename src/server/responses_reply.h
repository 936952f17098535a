// OpenAI's Responses API reply shapes: a response object whose output is reasoning,
// message and function_call items, whole or as the API's stream of semantic events
// (response.created, output_item.added, content_part.added, output_text.delta ...
// output_item.done per item, then response.completed or response.incomplete), each with
// its sequence_number. Items are complete when they go out: a call's arguments in one
// delta once they are read.
#pragma once

#include <cstdint>
#include <string>

#include "src/server/reply_shape.h"

namespace qrun::server {

class ResponsesReply : public ReplyShape {
 public:
  // id: "resp_" and a unique tail that the items' ids share; echoed: the request's
  // settings the response object repeats (ResponsesRequest::echoed).
  ResponsesReply(std::string id, std::string model, nlohmann::json echoed);

  nlohmann::json whole(const std::string& content, const std::string& reasoning, const std::vector<ToolCall>& calls,
                       const ReplyEnd& end, const nlohmann::json& logprobs) const override;
  std::string open() override;
  std::string reasoning(const std::string& text) override;
  std::string text(const std::string& text, const nlohmann::json& logprobs) override;
  std::string close(const std::vector<ToolCall>& calls, const ReplyEnd& end, const nlohmann::json& logprobs) override;
  std::string failed(const std::string& message) override;

 private:
  enum class Item { None, Reasoning, Message };
  nlohmann::json response(const char* status, const nlohmann::json& output, const ReplyEnd* end) const;
  std::string item_id(const char* prefix, size_t index) const;
  nlohmann::json item(Item kind, size_t index, const std::string& text, bool done) const;
  nlohmann::json call_item(const ToolCall& call, size_t index, bool done) const;
  std::string event(const char* type, nlohmann::json data);
  nlohmann::json at(nlohmann::json more) const;
  std::string begin_item(Item kind);
  std::string delta(Item kind, const std::string& text);
  std::string end_item();

  std::string id_, tail_, model_;
  nlohmann::json echoed_;
  int64_t created_;
  int64_t sequence_ = 0;
  nlohmann::json output_ = nlohmann::json::array();  // the items done so far
  Item open_ = Item::None;
  std::string open_text_;
};

}  // namespace qrun::server
