// OpenAI's reply shapes: a chat completion (message with reasoning_content and
// tool_calls) or a text completion, whole or as a stream of chunks ("data:" lines, then
// "data: [DONE]").
#pragma once

#include <cstdint>
#include <string>

#include "src/server/reply_shape.h"
#include "src/server/request.h"

namespace qrun::server {

class OpenAiReply : public ReplyShape {
 public:
  // echo: text completions' prompt, which the reply begins with ("" for none);
  // include_usage: a stream ends with a chunk of usage (stream_options.include_usage).
  OpenAiReply(Endpoint endpoint, std::string id, std::string model, std::string echo, bool include_usage);

  nlohmann::json whole(const std::string& content, const std::string& reasoning, const std::vector<ToolCall>& calls,
                       const ReplyEnd& end, const nlohmann::json& logprobs) const override;
  std::string open() override;
  std::string reasoning(const std::string& text) override;
  std::string text(const std::string& text, const nlohmann::json& logprobs) override;
  std::string close(const std::vector<ToolCall>& calls, const ReplyEnd& end, const nlohmann::json& logprobs) override;
  std::string failed(const std::string& message) override;

 private:
  nlohmann::json base(const char* object) const;
  nlohmann::json chunk(const std::string& text, const nlohmann::json& finish, bool first, const nlohmann::json& logprobs) const;

  Endpoint endpoint_;
  std::string id_, model_, echo_;
  int64_t created_;
  bool include_usage_;
};

}  // namespace qrun::server
