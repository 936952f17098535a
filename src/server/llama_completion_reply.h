// llama.cpp's /completion reply: {"content", "stop": true, "stop_type", "timings", ...}
// whole, or streamed as "data:" events of {"content": piece, "stop": false} ending with
// one of "stop": true and the timings (no [DONE], as llama-server).
#pragma once

#include <string>

#include "src/server/reply_shape.h"

namespace qrun::server {

class LlamaCompletionReply : public ReplyShape {
 public:
  // prompt: as the request gave it (echoed in the final object, as llama-server does).
  LlamaCompletionReply(std::string model, std::string prompt);

  nlohmann::json whole(const std::string& content, const std::string& reasoning, const std::vector<ToolCall>& calls,
                       const ReplyEnd& end, const nlohmann::json& logprobs) const override;
  std::string open() override { return {}; }
  std::string reasoning(const std::string&) override { return {}; }  // completions have none
  std::string text(const std::string& text, const nlohmann::json& logprobs) override;
  std::string close(const std::vector<ToolCall>& calls, const ReplyEnd& end, const nlohmann::json& logprobs) override;
  std::string failed(const std::string& message) override;

 private:
  nlohmann::json final_object(const std::string& content, const ReplyEnd& end) const;

  std::string model_, prompt_;
};

}  // namespace qrun::server
