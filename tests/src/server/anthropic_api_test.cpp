// qserve's Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens) end to
// end on stories260K: the same request through it and through /v1/chat/completions gives
// the same tokens, whole and streamed, and its errors are Anthropic's.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "src/server/anthropic_events.h"
#include "src/server/qserve_process.h"

namespace qrun {
namespace {

using nlohmann::json;
using ordered = nlohmann::ordered_json;
using test::post;
using test::QserveTest;
using test::Server;

// A message's text blocks, joined.
std::string text_of(const json& message) {
  std::string text;
  for (const json& block : message["content"])
    if (block["type"] == "text") text += block["text"].get<std::string>();
  return text;
}

json streamed(const Server& s, json body) {
  body["stream"] = true;
  const auto r = post(s, "/v1/messages", body);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  return test::accumulate(test::events_of(r->body));
}

TEST_F(QserveTest, AnthropicMessagesAreTheChatCompletionsReply) {
  Server s({"--workers", "1", "-c", "512", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const json anthropic = {{"model", "claude-sonnet-4-5"}, {"max_tokens", 40}, {"temperature", 0},
                          {"system", {{{"type", "text"}, {"text", "You tell stories."}}}},
                          {"messages", {{{"role", "user"}, {"content", "Tell me a story about a cat."}}}}};
  const json openai = {{"max_tokens", 40}, {"temperature", 0},
                       {"messages", {{{"role", "system"}, {"content", "You tell stories."}},
                                     {{"role", "user"}, {"content", "Tell me a story about a cat."}}}}};
  auto r = post(s, "/v1/chat/completions", openai);
  ASSERT_EQ(r->status, 200) << r->body;
  const json chat = json::parse(r->body);
  const std::string text = chat["choices"][0]["message"]["content"];
  ASSERT_GE(text.size(), 20u) << r->body;

  r = post(s, "/v1/messages", anthropic);
  ASSERT_EQ(r->status, 200) << r->body;
  const json message = json::parse(r->body);
  EXPECT_EQ(message["type"], "message");
  EXPECT_EQ(message["role"], "assistant");
  EXPECT_EQ(message["id"].get<std::string>().rfind("msg_", 0), 0u) << message;
  EXPECT_EQ(text_of(message), text);
  EXPECT_EQ(message["stop_reason"], chat["choices"][0]["finish_reason"] == "length" ? "max_tokens" : "end_turn");
  const json& usage = message["usage"];
  EXPECT_EQ(usage["input_tokens"].get<int>() + usage["cache_read_input_tokens"].get<int>(), chat["usage"]["prompt_tokens"]);
  EXPECT_GT(usage["cache_read_input_tokens"], 0);  // the worker's cache held the same prompt
  EXPECT_EQ(usage["output_tokens"], chat["usage"]["completion_tokens"]);

  const json stream = streamed(s, anthropic);
  EXPECT_EQ(text_of(stream), text);
  EXPECT_EQ(stream["stop_reason"], message["stop_reason"]);
  EXPECT_EQ(stream["usage"]["output_tokens"], usage["output_tokens"]);

  r = post(s, "/v1/messages/count_tokens", json{{"model", "x"}, {"system", anthropic["system"]}, {"messages", anthropic["messages"]}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["input_tokens"], chat["usage"]["prompt_tokens"]);

  // A stop sequence from the middle of the text cuts it there and is named.
  const std::string stop = text.substr(text.size() / 2, 3);
  json stopped = anthropic;
  stopped["stop_sequences"] = {stop};
  for (const bool stream_it : {false, true}) {
    json m;
    if (stream_it) {
      m = streamed(s, stopped);
    } else {
      r = post(s, "/v1/messages", stopped);
      ASSERT_EQ(r->status, 200) << r->body;
      m = json::parse(r->body);
    }
    EXPECT_EQ(text_of(m), text.substr(0, text.find(stop))) << m;
    EXPECT_EQ(m["stop_reason"], "stop_sequence") << m;
    EXPECT_EQ(m["stop_sequence"], stop) << m;
  }
}

// Anthropic's max_tokens is a required ceiling clients set high: the context's room caps
// it (OpenAI's max_tokens past the context stays a 400).
TEST_F(QserveTest, AnthropicMaxTokensIsCappedByTheContext) {
  Server s({"--workers", "1", "-c", "96", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const json messages = {{{"role", "user"}, {"content", "Hi"}}};
  auto r = post(s, "/v1/messages", json{{"max_tokens", 32000}, {"messages", messages}, {"ignore_eos", true}, {"seed", 1}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json m = json::parse(r->body);
  EXPECT_EQ(m["stop_reason"], "max_tokens");
  EXPECT_EQ(m["usage"]["input_tokens"].get<int>() + m["usage"]["cache_read_input_tokens"].get<int>() +
                m["usage"]["output_tokens"].get<int>(),
            96) << m;
  r = post(s, "/v1/chat/completions", json{{"max_tokens", 32000}, {"messages", messages}});
  EXPECT_EQ(r->status, 400) << r->body;
}

TEST_F(QserveTest, AnthropicToolUseRoundTrip) {
  Server s({"--workers", "1", "-c", "2048", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const json tools = json::parse(R"([
      {"name": "get_weather", "description": "The weather in a city",
       "input_schema": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
                        "required": ["city"], "additionalProperties": false}},
      {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}])");
  const json question = {{"role", "user"}, {"content", "What is the weather in Paris?"}};
  int called = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    const json body = {{"max_tokens", 400}, {"tools", tools}, {"tool_choice", {{"type", "any"}}}, {"seed", seed},
                       {"messages", {question}}};
    auto r = post(s, "/v1/messages", body);
    ASSERT_EQ(r->status, 200) << r->body;
    const json m = json::parse(r->body);
    if (m["stop_reason"] != "tool_use") continue;  // the story model can write long runs of spaces
    ++called;
    ASSERT_EQ(m["content"].size(), 1u) << m;
    const json& use = m["content"][0];
    EXPECT_EQ(use["type"], "tool_use");
    EXPECT_EQ(use["id"].get<std::string>().rfind("toolu_", 0), 0u) << use;
    EXPECT_EQ(use["name"], "get_weather");
    EXPECT_TRUE(use["input"] == json({{"city", "Paris"}}) || use["input"] == json({{"city", "Rome"}})) << use;
    const json stream = streamed(s, body);
    ASSERT_EQ(stream["content"].size(), 1u) << stream;
    EXPECT_EQ(stream["content"][0]["input"], use["input"]);
    EXPECT_EQ(stream["stop_reason"], "tool_use");
  }
  EXPECT_GT(called, 0);

  // The next turn (the call, its result, a question) reaches the template as OpenAI's
  // tool_calls and tool message would: the same prompt, the same greedy reply.
  const json anthropic = {
      {"max_tokens", 24}, {"temperature", 0}, {"tools", tools},
      {"messages", {question,
                    {{"role", "assistant"}, {"content", {{{"type", "tool_use"}, {"id", "toolu_1"}, {"name", "get_weather"},
                                                         {"input", {{"city", "Paris"}}}}}}},
                    {{"role", "user"}, {"content", {{{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", "Sunny, 21 C"}},
                                                    {{"type", "text"}, {"text", "Shall I take a coat?"}}}}}}}};
  // The tools in the order the translation writes them (the template prints them as JSON).
  const ordered function = {{"type", "function"}, {"function", {{"name", "get_weather"}, {"description", tools[0]["description"]},
                                                                {"parameters", ordered(tools[0]["input_schema"])}}}};
  const ordered openai = {
      {"max_tokens", 24}, {"temperature", 0}, {"tools", ordered::array({function})},
      {"messages", {question,
                    {{"role", "assistant"}, {"content", nullptr},
                     {"tool_calls", {{{"id", "toolu_1"}, {"type", "function"},
                                      {"function", {{"name", "get_weather"}, {"arguments", R"({"city":"Paris"})"}}}}}}},
                    {{"role", "tool"}, {"tool_call_id", "toolu_1"}, {"content", "Sunny, 21 C"}},
                    {{"role", "user"}, {"content", "Shall I take a coat?"}}}}};
  auto r = post(s, "/v1/chat/completions", openai);
  ASSERT_EQ(r->status, 200) << r->body;
  const json chat = json::parse(r->body);
  r = post(s, "/v1/messages", ordered(anthropic));
  ASSERT_EQ(r->status, 200) << r->body;
  const json m = json::parse(r->body);
  const int anthropic_prompt = m["usage"]["input_tokens"].get<int>() + m["usage"]["cache_read_input_tokens"].get<int>();
  EXPECT_EQ(anthropic_prompt, chat["usage"]["prompt_tokens"]) << m;
  if (m["stop_reason"] != "tool_use") {
    EXPECT_EQ(text_of(m), chat["choices"][0]["message"]["content"]) << m;
  }
}

// A <think> block comes back as a thinking block before the text (the story model held to
// one by a grammar); thinking "disabled" reaches Qwen3's template as enable_thinking false.
TEST_F(QserveTest, AnthropicThinkingBlocks) {
  Server s({"--workers", "1", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const std::string words = "[a-z]{1,6} (\" \" [a-z]{1,6}){1,3}";
  const std::string gbnf = "root ::= \"<think>\\n\" " + words + " \"\\n</think>\\n\\n\" " + words + "\n";
  const json question = {{{"role", "user"}, {"content", "Tell me a story."}}};
  int whole = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    const json body = {{"max_tokens", 80}, {"grammar", gbnf}, {"seed", seed}, {"messages", question},
                       {"thinking", {{"type", "enabled"}, {"budget_tokens", 1024}}}};
    auto r = post(s, "/v1/messages", body);
    ASSERT_EQ(r->status, 200) << r->body;
    const json m = json::parse(r->body);
    if (m["stop_reason"] != "end_turn") continue;
    ++whole;
    ASSERT_EQ(m["content"].size(), 2u) << m;
    EXPECT_EQ(m["content"][0]["type"], "thinking");
    EXPECT_FALSE(m["content"][0]["thinking"].get<std::string>().empty());
    EXPECT_EQ(m["content"][1]["type"], "text");
    EXPECT_EQ(text_of(m).find("think"), std::string::npos) << m;
    const json stream = streamed(s, body);
    EXPECT_EQ(stream["content"], m["content"]);
  }
  EXPECT_GT(whole, 0);
  auto count = [&](const json& thinking) {
    json body = {{"messages", question}};
    if (!thinking.is_null()) body["thinking"] = thinking;
    const auto r = post(s, "/v1/messages/count_tokens", body);
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["input_tokens"].get<int>();
  };
  // Qwen3's template writes an empty think block into the prompt when thinking is off.
  EXPECT_GT(count({{"type", "disabled"}}), count(nullptr));
  EXPECT_EQ(count({{"type", "enabled"}, {"budget_tokens", 1024}}), count(nullptr));
}

TEST_F(QserveTest, AnthropicErrorsAndKeys) {
  Server s({"--workers", "1", "--api-key", "sekrit", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const json body = {{"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  auto expect_error = [](const httplib::Result& r, int status, const std::string& type) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const json e = json::parse(r->body);
    EXPECT_EQ(e["type"], "error") << r->body;
    EXPECT_EQ(e["error"]["type"], type) << r->body;
    EXPECT_FALSE(e["error"]["message"].get<std::string>().empty()) << r->body;
  };
  expect_error(post(s, "/v1/messages", body), 401, "authentication_error");
  expect_error(post(s, "/v1/messages", body, {{"x-api-key", "wrong"}}), 401, "authentication_error");
  EXPECT_EQ(post(s, "/v1/messages", body, {{"x-api-key", "sekrit"}, {"anthropic-version", "2023-06-01"}})->status, 200);
  EXPECT_EQ(post(s, "/v1/messages", body, {{"Authorization", "Bearer sekrit"}})->status, 200);
  const httplib::Headers key = {{"x-api-key", "sekrit"}};
  json image = body;
  image["messages"][0]["content"] = {{{"type", "image"}, {"source", {{"type", "base64"}, {"data", ""}}}}};
  expect_error(post(s, "/v1/messages", image, key), 400, "invalid_request_error");
  expect_error(s.client()->Post("/v1/messages", key, "{\"messages\": [", "application/json"), 400, "invalid_request_error");
  expect_error(post(s, "/v1/messages/batches", body, key), 404, "not_found_error");
  json long_prompt = body;
  long_prompt["messages"][0]["content"] = std::string(20000, 'a');
  expect_error(post(s, "/v1/messages", long_prompt, key), 400, "invalid_request_error");
  // OpenAI's routes keep OpenAI's errors.
  const auto r = post(s, "/v1/chat/completions", json{{"messages", 1}}, key);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "messages") << r->body;
}

}  // namespace
}  // namespace qrun
