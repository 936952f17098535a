// Anthropic's reply shapes: a message whose content is thinking, text and tool_use blocks
// with its stop_reason and usage, whole or as Anthropic's stream of events
// (message_start, content_block_start/delta/stop per block, message_delta, message_stop).
// Usage follows Anthropic's split: input_tokens are the prompt tokens the worker's cache
// did not hold, cache_read_input_tokens those it did.
#pragma once

#include <string>

#include "src/server/reply_shape.h"

namespace qrun::server {

class AnthropicReply : public ReplyShape {
 public:
  AnthropicReply(std::string id, std::string model, int prompt_tokens);

  nlohmann::json whole(const std::string& content, const std::string& reasoning, const std::vector<ToolCall>& calls,
                       const ReplyEnd& end, const nlohmann::json& logprobs) const override;
  std::string open() override;
  std::string reasoning(const std::string& text) override;
  std::string text(const std::string& text, const nlohmann::json& logprobs) override;
  std::string close(const std::vector<ToolCall>& calls, const ReplyEnd& end, const nlohmann::json& logprobs) override;
  std::string failed(const std::string& message) override;

 private:
  enum class Block { None, Thinking, Text };
  std::string delta(Block block, const std::string& text);  // opens `block` first when another is open
  std::string end_block();

  std::string id_, model_;
  int prompt_tokens_;
  Block open_ = Block::None;
  int index_ = -1;  // of the open (or last) block
};

}  // namespace qrun::server
