// gpt-oss writes its replies in OpenAI's harmony format: a run of messages, each a header
// naming its channel (and maybe a recipient) then `<|message|>` and the body, ended by
// `<|end|>`, `<|call|>` or `<|return|>`, the next opening with `<|start|>`:
//
//   <|channel|>analysis<|message|>The user asks for the weather.<|end|>
//   <|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>
//
// (one line; the recipient may also stand before the channel, `assistant to=functions.x<|channel|>commentary json`,
// as gpt-oss's template writes earlier calls). The analysis channel is the reasoning; a
// message to `functions.NAME` is a call of the client's tool NAME; the final channel and
// commentary without a recipient (a preamble to the user) are the answer. <|call|> and
// <|return|> end a reply (generation_config lists them as end-of-turn ids), so a reply
// holds at most one call, as gpt-oss makes them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qrun/chat_template.h"
#include "src/chat/reply_scan.h"

namespace qrun {

// Whether a chat template writes harmony (channels and messages).
bool writes_harmony(std::string_view chat_template);

// The control tokens a chat reply keeps as text, so that its messages can be read.
std::vector<std::string_view> harmony_tokens();

// What the prompt writes of a required call before the model names the tool.
inline constexpr std::string_view kHarmonyCallStart = "<|channel|>commentary to=functions.";
// What follows the tool's name, before its JSON arguments.
inline constexpr std::string_view kHarmonyCallArgs = " <|constrain|>json<|message|>";

struct HarmonyReading {
  bool separate_reasoning = true;  // analysis apart; else every message stays in the content as written
  bool read_calls = true;          // tools were offered: messages to functions.NAME are calls
};

struct HarmonyReply {
  std::string reasoning, content;
  std::vector<ToolCall> calls;  // arguments as compact JSON; ids left empty
};

// A reply as it streams. Bodies go out as they come (leading whitespace dropped, messages
// of one kind joined by a blank line); a call waits for its end, and one whose arguments are
// not a JSON object stays in the content as written, as does a message to any other
// recipient. A reply that does not begin with a header (a reply held to JSON) is all content.
// `start`: what the prompt already wrote of the reply (a required call's header), read first.
class HarmonyStream {
 public:
  explicit HarmonyStream(HarmonyReading how, std::string_view start = {});
  ReplyParts feed(std::string_view text);  // what to send now
  HarmonyReply finish();                   // what was held back, and the calls

 private:
  enum class State { Start, Plain, Header, Body };
  enum class Goes { Reasoning, Content, AsWritten, Call };
  void open_body(std::string_view header, ReplyParts& out);
  void emit(std::string_view text, ReplyParts& out);
  void close_body(std::string_view end_marker, ReplyParts& out);

  HarmonyReading how_;
  State state_ = State::Start;
  std::string held_;       // text not read yet
  std::string header_;     // the message's header as written (AsWritten and Call messages)
  Goes goes_ = Goes::Content;
  std::string call_name_;
  std::string body_;       // a call's arguments so far
  bool body_begun_ = false;  // the body's leading whitespace is past
  bool reasoning_sent_ = false, content_sent_ = false;
  bool separate_next_ = false;  // a body of a kind already sent begins: a blank line first
  std::vector<ToolCall> calls_;
};

// The whole reply at once: the pieces streaming would send, added up.
HarmonyReply read_harmony_reply(std::string_view reply, HarmonyReading how);

}  // namespace qrun
