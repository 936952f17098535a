// Thinking models (Qwen3, QwQ, DeepSeek-R1 and its distills, SmolLM3) write their
// reasoning between <think> and </think> before the answer; Mistral's (Magistral 2507 on,
// Ministral 3 reasoning) between the control tokens [THINK] and [/THINK]. As llama.cpp's server does
// by default (--reasoning-format deepseek), qserve returns it apart from the answer:
// message.reasoning_content, and delta.reasoning_content in a stream; content holds the
// answer only, and tool calls are read from the answer. (gpt-oss's channels:
// src/chat/harmony_reply.h.)
#pragma once

#include <string>
#include <string_view>

#include "src/chat/reply_scan.h"

namespace qrun::server {

struct ThinkTags {
  std::string_view open, close;
};
inline constexpr ThinkTags kThinkTags{"<think>", "</think>"};
inline constexpr ThinkTags kMistralThinkTags{"[THINK]", "[/THINK]"};

// The tags a chat template writes reasoning between: Mistral's when it writes [THINK].
ThinkTags think_tags(std::string_view chat_template);

// --reasoning-format and a request's "reasoning_format", named as llama.cpp names them:
// "deepseek" and "auto" return the reasoning apart, "none" leaves it in the content.
// False for any other name.
bool parse_reasoning_format(std::string_view name, bool* separate);

// Whether a prompt ends inside a <think> block: the templates of DeepSeek-R1 and QwQ
// end the assistant's header with "<think>\n", so the reply begins with the reasoning
// and only closes it. (Qwen3's with enable_thinking false ends with an empty, closed one.)
bool prompt_opens_thinking(std::string_view prompt, ThinkTags tags = kThinkTags);

using ReasoningSplit = ReplyParts;

// A reply that begins with the opening tag (after whitespace), or any reply when `inside` (the
// prompt opened the block; a <think> the model writes again is dropped): the text up to </think>, or all of it when the block never
// closes, is the reasoning, without whitespace at either end; what follows </think>,
// without the whitespace that begins it, is the content. Any other reply is all content,
// unchanged.
ReasoningSplit split_reasoning(std::string_view reply, bool inside, ThinkTags tags = kThinkTags);

// The same split as a reply streams: each piece goes out as soon as no later text can
// change where it belongs. The pieces of each part add up to split_reasoning's.
class ReasoningStream {
 public:
  explicit ReasoningStream(bool inside, ThinkTags tags = kThinkTags)
      : tags_(tags), state_(inside ? State::Reasoning : State::Start) {}
  ReasoningSplit feed(std::string_view text);  // what to send now
  ReasoningSplit finish();                     // what was held back

 private:
  enum class State { Start, Reasoning, Content };
  ThinkTags tags_;
  State state_;
  std::string held_;               // text not sent yet
  bool opened_ = false;            // the reply's own <think> is past (or cannot come)
  bool reasoning_begun_ = false;   // reasoning text sent: its leading whitespace is past
  bool content_begun_ = false;     // likewise for the content after </think>
  bool after_reasoning_ = false;   // the content follows a reasoning block (its leading whitespace goes)
};

}  // namespace qrun::server
