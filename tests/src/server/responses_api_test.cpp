// qserve's OpenAI Responses API (POST /v1/responses) end to end on stories260K: the same
// request through it and through /v1/chat/completions gives the same tokens, whole and
// streamed, and a tool round trip the same prompt.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "src/server/qserve_process.h"
#include "src/server/responses_events.h"

namespace qrun {
namespace {

using nlohmann::json;
using ordered = nlohmann::ordered_json;
using test::post;
using test::QserveTest;
using test::Server;

// The response's output items of one type.
std::vector<json> items_of(const json& response, const std::string& type) {
  std::vector<json> out;
  for (const json& item : response["output"])
    if (item["type"] == type) out.push_back(item);
  return out;
}

std::string output_text(const json& response) {
  std::string text;
  for (const json& m : items_of(response, "message"))
    for (const json& part : m["content"]) text += part["text"].get<std::string>();
  return text;
}

// Any nlohmann type: an ordered body keeps its keys (the tools reach the template as written).
template <class Json>
json streamed(const Server& s, Json body) {
  body["stream"] = true;
  const auto r = post(s, "/v1/responses", body);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
  return test::accumulate_response(test::response_events(r->body));
}

TEST_F(QserveTest, ResponsesAreTheChatCompletionsReply) {
  Server s({"--workers", "1", "-c", "512", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const json request = {{"model", "gpt-5"}, {"max_output_tokens", 40}, {"temperature", 0},
                        {"instructions", "You tell stories."}, {"input", "Tell me a story about a cat."}};
  auto r = post(s, "/v1/chat/completions",
                json{{"max_tokens", 40}, {"temperature", 0},
                     {"messages", {{{"role", "system"}, {"content", "You tell stories."}},
                                   {{"role", "user"}, {"content", "Tell me a story about a cat."}}}}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json chat = json::parse(r->body);
  const std::string text = chat["choices"][0]["message"]["content"];
  ASSERT_GE(text.size(), 20u) << r->body;
  const std::string status = chat["choices"][0]["finish_reason"] == "length" ? "incomplete" : "completed";

  r = post(s, "/v1/responses", request);
  ASSERT_EQ(r->status, 200) << r->body;
  const json response = json::parse(r->body);
  EXPECT_EQ(response["object"], "response");
  EXPECT_EQ(response["id"].get<std::string>().rfind("resp_", 0), 0u) << response;
  EXPECT_EQ(response["status"], status);
  if (status == "incomplete") {
    EXPECT_EQ(response["incomplete_details"]["reason"], "max_output_tokens");
  }
  EXPECT_EQ(output_text(response), text);
  EXPECT_EQ(response["instructions"], "You tell stories.");
  EXPECT_EQ(response["max_output_tokens"], 40);
  EXPECT_EQ(response["usage"]["input_tokens"], chat["usage"]["prompt_tokens"]);
  EXPECT_EQ(response["usage"]["output_tokens"], chat["usage"]["completion_tokens"]);
  EXPECT_GT(response["usage"]["input_tokens_details"]["cached_tokens"], 0);  // the worker held the prompt

  const json stream = streamed(s, request);
  EXPECT_EQ(output_text(stream), text);
  EXPECT_EQ(stream["status"], status);
  EXPECT_EQ(stream["usage"]["output_tokens"], response["usage"]["output_tokens"]);

  // max_output_tokens is a ceiling the context's room lowers.
  json ceiling = request;
  ceiling["max_output_tokens"] = 100000;
  ceiling["ignore_eos"] = true;
  r = post(s, "/v1/responses", ceiling);
  ASSERT_EQ(r->status, 200) << r->body;
  const json capped = json::parse(r->body);
  EXPECT_EQ(capped["status"], "incomplete");
  EXPECT_EQ(capped["usage"]["total_tokens"], 512) << capped["usage"];
}

TEST_F(QserveTest, ResponsesFunctionCallRoundTrip) {
  Server s({"--workers", "1", "-c", "2048", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const ordered function = ordered::parse(R"({"type": "function", "name": "get_weather", "description": "The weather in a city",
      "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
                     "required": ["city"], "additionalProperties": false}})");
  const ordered tools = ordered::array({function, ordered{{"type", "web_search"}}});
  int called = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    const ordered body = {{"max_output_tokens", 400}, {"tools", tools}, {"tool_choice", "required"}, {"seed", seed},
                          {"input", "What is the weather in Paris?"}};
    auto r = post(s, "/v1/responses", body);
    ASSERT_EQ(r->status, 200) << r->body;
    const json response = json::parse(r->body);
    if (response["status"] != "completed") continue;  // the story model can write long runs of spaces
    ++called;
    const std::vector<json> calls = items_of(response, "function_call");
    ASSERT_EQ(calls.size(), 1u) << response;
    EXPECT_EQ(calls[0]["call_id"].get<std::string>().rfind("call_", 0), 0u) << calls[0];
    EXPECT_EQ(calls[0]["name"], "get_weather");
    const json args = json::parse(calls[0]["arguments"].get<std::string>());
    EXPECT_TRUE(args == json({{"city", "Paris"}}) || args == json({{"city", "Rome"}})) << args;
    const json stream = streamed(s, body);
    ASSERT_EQ(items_of(stream, "function_call").size(), 1u) << stream;
    EXPECT_EQ(items_of(stream, "function_call")[0]["arguments"], calls[0]["arguments"]);
  }
  EXPECT_GT(called, 0);

  // The next turn as input items reaches the template as the chat API's turns would.
  const ordered next = {
      {"max_output_tokens", 24}, {"temperature", 0}, {"tools", tools},
      {"input", ordered::array({ordered{{"role", "user"}, {"content", "What is the weather in Paris?"}},
                                ordered{{"type", "function_call"}, {"call_id", "call_1"}, {"name", "get_weather"},
                                        {"arguments", R"({"city":"Paris"})"}},
                                ordered{{"type", "function_call_output"}, {"call_id", "call_1"}, {"output", "Sunny, 21 C"}},
                                ordered{{"role", "user"}, {"content", "Shall I take a coat?"}}})}};
  ordered chat_function = {{"type", "function"},
                           {"function", {{"name", "get_weather"}, {"description", function["description"]},
                                         {"parameters", function["parameters"]}}}};
  const ordered chat_request = {
      {"max_tokens", 24}, {"temperature", 0}, {"tools", ordered::array({chat_function})},
      {"messages", ordered::array({ordered{{"role", "user"}, {"content", "What is the weather in Paris?"}},
                                   ordered{{"role", "assistant"}, {"content", nullptr},
                                           {"tool_calls", ordered::array({ordered{{"id", "call_1"}, {"type", "function"},
                                                                                  {"function", {{"name", "get_weather"},
                                                                                                {"arguments", R"({"city":"Paris"})"}}}}})}},
                                   ordered{{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "Sunny, 21 C"}},
                                   ordered{{"role", "user"}, {"content", "Shall I take a coat?"}}})}};
  auto r = post(s, "/v1/chat/completions", chat_request);
  ASSERT_EQ(r->status, 200) << r->body;
  const json chat = json::parse(r->body);
  r = post(s, "/v1/responses", next);
  ASSERT_EQ(r->status, 200) << r->body;
  const json response = json::parse(r->body);
  EXPECT_EQ(response["usage"]["input_tokens"], chat["usage"]["prompt_tokens"]) << response;
  if (items_of(response, "function_call").empty()) {
    EXPECT_EQ(output_text(response), chat["choices"][0]["message"]["content"]) << response;
  }
}

// A <think> block comes back as a reasoning item before the message (the story model held
// to one by a grammar); reasoning.effort "none" reaches Qwen3's template as
// enable_thinking false, which writes an empty think block into the prompt.
TEST_F(QserveTest, ResponsesReasoningItems) {
  Server s({"--workers", "1", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const std::string words = "[a-z]{1,6} (\" \" [a-z]{1,6}){1,3}";
  const std::string gbnf = "root ::= \"<think>\\n\" " + words + " \"\\n</think>\\n\\n\" " + words + "\n";
  int whole = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    const json body = {{"max_output_tokens", 80}, {"grammar", gbnf}, {"seed", seed}, {"input", "Tell me a story."}};
    const auto r = post(s, "/v1/responses", body);
    ASSERT_EQ(r->status, 200) << r->body;
    const json response = json::parse(r->body);
    if (response["status"] != "completed") continue;
    ++whole;
    ASSERT_EQ(response["output"].size(), 2u) << response;
    EXPECT_EQ(response["output"][0]["type"], "reasoning");
    EXPECT_FALSE(response["output"][0]["content"][0]["text"].get<std::string>().empty());
    EXPECT_EQ(response["output"][1]["type"], "message");
    EXPECT_EQ(output_text(response).find("think"), std::string::npos) << response;
    json items = streamed(s, body)["output"];
    ASSERT_EQ(items.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {  // ids are the response's own
      EXPECT_EQ(items[i]["id"].get<std::string>().substr(0, 3), response["output"][i]["id"].get<std::string>().substr(0, 3));
      items[i]["id"] = response["output"][i]["id"];
    }
    EXPECT_EQ(items, response["output"]);
  }
  EXPECT_GT(whole, 0);
  auto prompt_tokens = [&](const json& reasoning) {
    json body = {{"max_output_tokens", 1}, {"input", "Tell me a story."}};
    if (!reasoning.is_null()) body["reasoning"] = reasoning;
    const auto r = post(s, "/v1/responses", body);
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["usage"]["input_tokens"].get<int>();
  };
  EXPECT_GT(prompt_tokens({{"effort", "none"}}), prompt_tokens(nullptr));
  EXPECT_EQ(prompt_tokens({{"effort", "high"}}), prompt_tokens(nullptr));
}

TEST_F(QserveTest, ResponsesErrorsAreOpenAis) {
  Server s({"--workers", "1", "--api-key", "sekrit", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const httplib::Headers key = {{"Authorization", "Bearer sekrit"}};
  auto expect_error = [](const httplib::Result& r, int status, const std::string& param) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const json e = json::parse(r->body);
    EXPECT_FALSE(e["error"]["message"].get<std::string>().empty()) << r->body;
    if (!param.empty()) {
      EXPECT_EQ(e["error"]["param"], param) << r->body;
    }
  };
  expect_error(post(s, "/v1/responses", json{{"input", "Hi"}}), 401, "");
  EXPECT_EQ(post(s, "/v1/responses", json{{"input", "Hi"}, {"max_output_tokens", 2}}, key)->status, 200);
  expect_error(post(s, "/v1/responses", json{{"input", "Hi"}, {"previous_response_id", "resp_1"}}, key), 400, "previous_response_id");
  expect_error(post(s, "/v1/responses", json{{"input", {{{"role", "user"}, {"content", {{{"type", "input_image"}}}}}}}}, key), 400,
               "input[0].content[0]");
  expect_error(post(s, "/v1/responses", json{{"input", std::string(20000, 'a')}}, key), 400, "messages");
  expect_error(s.client()->Post("/v1/responses", key, "{\"input\": ", "application/json"), 400, "");
}

}  // namespace
}  // namespace qrun
