// gpt-oss's harmony replies read into reasoning, answer and tool calls, whole and as they
// stream in pieces of every size.
#include <gtest/gtest.h>

#include "src/chat/harmony_reply.h"

namespace qrun {
namespace {

struct Want {
  std::string reasoning, content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

HarmonyReply streamed(std::string_view reply, size_t step, HarmonyReading how, std::string_view start = {}) {
  HarmonyStream stream(how, start);
  ReplyParts sent;
  for (size_t at = 0; at < reply.size(); at += step) sent.append(stream.feed(reply.substr(at, step)));
  HarmonyReply rest = stream.finish();
  sent.append({rest.reasoning, rest.content});
  return {std::move(sent.reasoning), std::move(sent.content), std::move(rest.calls)};
}

void expect_read(std::string_view reply, HarmonyReading how, const Want& want, std::string_view start = {}) {
  auto check = [&](const HarmonyReply& r, size_t step) {
    EXPECT_EQ(r.reasoning, want.reasoning) << reply << " step " << step;
    EXPECT_EQ(r.content, want.content) << reply << " step " << step;
    ASSERT_EQ(r.calls.size(), want.calls.size()) << reply << " step " << step;
    for (size_t i = 0; i < r.calls.size(); ++i) {
      EXPECT_EQ(r.calls[i].name, want.calls[i].first) << reply;
      EXPECT_EQ(r.calls[i].arguments, want.calls[i].second) << reply;
      EXPECT_TRUE(r.calls[i].id.empty());
    }
  };
  check(read_harmony_reply(std::string(start) + std::string(reply), how), 0);
  for (size_t step = 1; step <= reply.size(); ++step) check(streamed(reply, step, how, start), step);
}

constexpr HarmonyReading kChat{};  // reasoning apart, tools offered

TEST(HarmonyReply, ChannelsBecomeReasoningAndAnswer) {
  expect_read("<|channel|>analysis<|message|>User asks 2+2. Answer 4.<|end|><|start|>assistant"
              "<|channel|>final<|message|>2 + 2 = 4.",
              kChat, {"User asks 2+2. Answer 4.", "2 + 2 = 4.", {}});
  expect_read("<|channel|>final<|message|>  Hello!<|return|>", kChat, {"", "Hello!", {}});
  expect_read("<|channel|>analysis<|message|>still thinking", kChat, {"still thinking", "", {}});
  expect_read("<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>fin", kChat, {"a", "", {}});
  expect_read("plain text <|end|>", kChat, {"", "plain text <|end|>", {}});
  expect_read(R"(  {"a": 1})", kChat, {"", R"(  {"a": 1})", {}});  // a reply held to JSON
  // A preamble to the user (commentary without a recipient) is answer; two messages of a
  // kind are joined by a blank line.
  expect_read("<|channel|>commentary<|message|>One.<|end|><|start|>assistant<|channel|>final<|message|>Two.", kChat,
              {"", "One.\n\nTwo.", {}});
}

TEST(HarmonyReply, MessagesToFunctionsAreCalls) {
  // The recipient after the channel, as gpt-oss writes calls...
  expect_read("<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary "
              "to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}",
              kChat, {"Need the weather.", "", {{"get_weather", R"({"city":"Paris"})"}}});
  // ...or before it, as its template writes earlier ones; <|call|> when it is kept.
  expect_read("<|channel|>analysis<|message|>x<|end|><|start|>assistant to=functions.now<|channel|>commentary "
              "json<|message|> {} <|call|>",
              kChat, {"x", "", {{"now", "{}"}}});
  expect_read("<|channel|>commentary<|message|>Let me check.<|end|><|start|>assistant<|channel|>commentary "
              "to=functions.now <|constrain|>json<|message|>{}",
              kChat, {"", "Let me check.", {{"now", "{}"}}});
  // Arguments cut short, or not an object: the message stays in the answer as written.
  const std::string cut = "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Par";
  expect_read(cut, kChat, {"", cut, {}});
  const std::string list = "<|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json<|message|>[1]<|call|>";
  expect_read("<|channel|>analysis<|message|>x<|end|>" + list, kChat, {"x", list, {}});
  // Another recipient (a built-in tool the client cannot run), or tools not offered.
  const std::string browse = "<|start|>assistant<|channel|>commentary to=browser.search <|constrain|>json<|message|>{\"q\": 1}";
  expect_read("<|channel|>analysis<|message|>x<|end|>" + browse, kChat, {"x", browse, {}});
  const std::string call = "<|channel|>commentary to=functions.now <|constrain|>json<|message|>{}";
  expect_read(call, {true, false}, {"", call, {}});
}

// reasoning_format "none": every message stays in the content as written; calls are still read.
TEST(HarmonyReply, WithoutSeparateReasoningTheReplyStaysAsWritten) {
  const std::string thought = "  <|channel|>analysis<|message|>Hm.<|end|><|start|>assistant<|channel|>final<|message|> Hi.";
  expect_read(thought, {false, true}, {"", thought, {}});
  const std::string think = "<|channel|>analysis<|message|>Hm.<|end|>";
  expect_read(think + "<|start|>assistant<|channel|>commentary to=functions.now <|constrain|>json<|message|>{}", {false, true},
              {"", think, {{"now", "{}"}}});
  expect_read(think + "<|start|>assistant<|chan", {false, true}, {"", think + "<|start|>assistant<|chan", {}});
}

TEST(HarmonyReply, TextStreamsBeforeItsMessageEnds) {
  HarmonyStream s(kChat);
  EXPECT_EQ(s.feed("<|channel|>analysis<|mess").reasoning, "");
  EXPECT_EQ(s.feed("age|>Thin").reasoning, "Thin");
  EXPECT_EQ(s.feed("king<|e").reasoning, "king");
  const ReplyParts next = s.feed("nd|><|start|>assistant<|channel|>final<|message|>Done");
  EXPECT_EQ(next.reasoning, "");
  EXPECT_EQ(next.content, "Done");
  // A call waits for its end.
  HarmonyStream c(kChat);
  const ReplyParts head = c.feed("<|channel|>commentary to=functions.now <|constrain|>json<|message|>{");
  EXPECT_EQ(head.reasoning + head.content, "");
  EXPECT_EQ(c.feed("}").content, "");
  EXPECT_EQ(c.finish().calls.size(), 1u);
}

// A required call: the prompt wrote the header up to the tool's name.
TEST(HarmonyReply, RequiredCallStartsInTheHeader) {
  expect_read(R"(get_weather <|constrain|>json<|message|>{"city": "Rome"})", kChat, {"", "", {{"get_weather", R"({"city":"Rome"})"}}},
              kHarmonyCallStart);
  EXPECT_TRUE(writes_harmony("{{ '<|start|>assistant<|channel|>final<|message|>' + m.content }}"));
  EXPECT_FALSE(writes_harmony("<|im_start|>assistant"));
}

}  // namespace
}  // namespace qrun
