// OpenAI Responses API reply shapes (src/server/responses_reply.h): a stream's events, put
// together as the OpenAI SDKs do, give the response the whole reply gives.
#include "src/server/responses_reply.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "src/server/responses_events.h"

namespace qrun::server {
namespace {

using nlohmann::json;

TEST(ResponsesReply, StreamedEventsBuildTheWholeResponse) {
  const std::vector<ToolCall> calls = {{"call_1", "get_weather", R"({"city":"Paris"})"}, {"call_2", "now", "{}"}};
  const json echoed = {{"instructions", "Be brief."}, {"tools", json::array()}, {"tool_choice", "auto"}};
  struct Case {
    std::vector<std::string> reasoning, text;
    std::vector<ToolCall> calls;
    std::string finish;
  };
  for (const Case& c : {Case{{"Think", "ing."}, {"Hel", "lo"}, calls, "stop"}, Case{{}, {"Hi"}, {}, "length"},
                        Case{{"Only thought"}, {}, {}, "stop"}, Case{{}, {}, calls, "stop"}, Case{{}, {}, {}, "stop"}}) {
    ResponsesReply shape("resp_abc", "m.q4", echoed);
    const ReplyEnd end{c.finish, "", {40, 12, 30}};
    std::string sse = shape.open();
    std::string reasoning, text;
    for (const std::string& r : c.reasoning) sse += shape.reasoning(r), reasoning += r;
    for (const std::string& t : c.text) sse += shape.text(t, nullptr), text += t;
    sse += shape.close(c.calls, end, nullptr);
    const json whole = shape.whole(text, reasoning, c.calls, end, nullptr);
    EXPECT_EQ(test::accumulate_response(test::response_events(sse)), whole) << sse;
    EXPECT_EQ(whole["status"], c.finish == "length" ? "incomplete" : "completed");
    EXPECT_EQ(whole["object"], "response");
    EXPECT_EQ(whole["instructions"], "Be brief.");
    EXPECT_EQ(whole["usage"], json({{"input_tokens", 40}, {"input_tokens_details", {{"cached_tokens", 30}}},
                                    {"output_tokens", 12}, {"total_tokens", 52}}));
    size_t at = 0;
    if (!reasoning.empty()) {
      EXPECT_EQ(whole["output"][at]["type"], "reasoning");
      EXPECT_EQ(whole["output"][at++]["content"][0]["text"], reasoning);
    }
    if (!text.empty() || (reasoning.empty() && c.calls.empty())) {
      EXPECT_EQ(whole["output"][at]["type"], "message");
      EXPECT_EQ(whole["output"][at++]["content"][0]["text"], text);
    }
    for (const ToolCall& call : c.calls) {
      const json& item = whole["output"][at++];
      EXPECT_EQ(item["type"], "function_call");
      EXPECT_EQ(item["call_id"], call.id);
      EXPECT_EQ(item["name"], call.name);
      EXPECT_EQ(item["arguments"], call.arguments);
    }
    EXPECT_EQ(at, whole["output"].size()) << whole;
  }
}

TEST(ResponsesReply, AFailureIsAResponseFailedEvent) {
  ResponsesReply shape("resp_abc", "m", json::object());
  std::string sse = shape.open();
  sse += shape.text("Hi", nullptr);
  sse += shape.failed("the worker process died");
  const std::vector<json> events = test::response_events(sse);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["type"], "response.failed");
  EXPECT_EQ(events.back()["response"]["status"], "failed");
  EXPECT_EQ(events.back()["response"]["error"]["message"], "the worker process died");
}

}  // namespace
}  // namespace qrun::server
