// Anthropic's reply shapes (src/server/anthropic_reply.h): a stream's events, put together
// as Anthropic's SDKs do, give the message the whole reply gives.
#include "src/server/anthropic_reply.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "src/server/anthropic_events.h"

namespace qrun::server {
namespace {

using nlohmann::json;
using test::accumulate;
using test::events_of;

TEST(AnthropicReply, StreamedEventsBuildTheWholeMessage) {
  const std::vector<ToolCall> calls = {{"toolu_1", "get_weather", R"({"city":"Paris","days":[1,2]})"},
                                       {"toolu_2", "now", "{}"}};
  ReplyEnd end{"stop", "", {40, 12, 30}};
  struct Case {
    std::vector<std::string> reasoning, text;
    std::vector<ToolCall> calls;
    std::string stop_reason;
  };
  for (const Case& c : {Case{{"Think", "ing."}, {"Hel", "lo"}, calls, "tool_use"}, Case{{}, {"Hi"}, {}, "end_turn"},
                        Case{{"Only thought"}, {}, {}, "end_turn"}, Case{{}, {}, calls, "tool_use"},
                        Case{{}, {}, {}, "end_turn"}}) {
    AnthropicReply shape("msg_1", "m.q4", 40);
    std::string sse = shape.open();
    std::string reasoning, text;
    for (const std::string& r : c.reasoning) sse += shape.reasoning(r), reasoning += r;
    for (const std::string& t : c.text) sse += shape.text(t, nullptr), text += t;
    sse += shape.close(c.calls, end, nullptr);
    const json whole = shape.whole(text, reasoning, c.calls, end, nullptr);
    EXPECT_EQ(accumulate(events_of(sse)), whole) << sse;
    EXPECT_EQ(whole["stop_reason"], c.stop_reason);
    EXPECT_EQ(whole["type"], "message");
    EXPECT_EQ(whole["usage"], json({{"input_tokens", 10}, {"cache_creation_input_tokens", 0},
                                    {"cache_read_input_tokens", 30}, {"output_tokens", 12}}));
    size_t at = 0;
    if (!reasoning.empty()) {
      EXPECT_EQ(whole["content"][at++], json({{"type", "thinking"}, {"thinking", reasoning}, {"signature", ""}}));
    }
    if (!text.empty() || (reasoning.empty() && c.calls.empty())) {
      EXPECT_EQ(whole["content"][at++], json({{"type", "text"}, {"text", text}}));
    }
    for (const ToolCall& call : c.calls)
      EXPECT_EQ(whole["content"][at++], json({{"type", "tool_use"}, {"id", call.id}, {"name", call.name}, {"input", json::parse(call.arguments)}}));
    EXPECT_EQ(at, whole["content"].size()) << whole;
  }
}

TEST(AnthropicReply, StopReasons) {
  AnthropicReply shape("msg_1", "m", 3);
  const std::vector<ToolCall> call = {{"toolu_1", "now", "{}"}};
  EXPECT_EQ(shape.whole("a", "", {}, ReplyEnd{"length", "", {}}, nullptr)["stop_reason"], "max_tokens");
  EXPECT_EQ(shape.whole("a", "", call, ReplyEnd{"length", "", {}}, nullptr)["stop_reason"], "max_tokens");
  const json stopped = shape.whole("a", "", {}, ReplyEnd{"stop", "END", {}}, nullptr);
  EXPECT_EQ(stopped["stop_reason"], "stop_sequence");
  EXPECT_EQ(stopped["stop_sequence"], "END");
  EXPECT_TRUE(shape.whole("a", "", {}, ReplyEnd{"stop", "", {}}, nullptr)["stop_sequence"].is_null());
  const std::vector<json> failed = events_of(shape.failed("the worker process died"));
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0]["event"], "error");
  EXPECT_EQ(failed[0]["data"]["error"]["type"], "api_error");
  EXPECT_EQ(failed[0]["data"]["error"]["message"], "the worker process died");
}

}  // namespace
}  // namespace qrun::server
