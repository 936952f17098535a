// A reply in the shape of the API that asked for it (OpenAI's chat and text completions,
// Anthropic's messages): the front reads the model's text once (its reasoning, its tool
// calls) and hands the parts to the request's shape, whole or as a stream of events.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qrun/chat_template.h"

namespace qrun::server {

struct Usage {
  int prompt = 0, completion = 0, cached = 0;  // cached: prompt tokens the worker's cache held
};

// How a reply ended, from the worker's "done" line.
struct ReplyEnd {
  std::string finish = "stop";  // "stop" (end of text or a stop string), "length"
  std::string stop_string;      // the stop string that ended it, if one did
  Usage usage;
  double prompt_ms = 0, eval_ms = 0;
};
ReplyEnd reply_end(const std::string& done_line);

class ReplyShape {
 public:
  virtual ~ReplyShape() = default;
  // A whole reply's body. `logprobs`: the choice's field (null when not asked for).
  virtual nlohmann::json whole(const std::string& content, const std::string& reasoning,
                               const std::vector<ToolCall>& calls, const ReplyEnd& end,
                               const nlohmann::json& logprobs) const = 0;
  // A stream, as server-sent-event text to send at each step ("" for nothing): first
  // `open`, then reasoning and text as they come, then `close` with the calls (or
  // `failed` when the worker failed after the answer began).
  virtual std::string open() = 0;
  virtual std::string reasoning(const std::string& text) = 0;
  virtual std::string text(const std::string& text, const nlohmann::json& logprobs) = 0;
  virtual std::string close(const std::vector<ToolCall>& calls, const ReplyEnd& end, const nlohmann::json& logprobs) = 0;
  virtual std::string failed(const std::string& message) = 0;
};

}  // namespace qrun::server
