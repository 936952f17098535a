// OpenAI Responses API bodies read into chat requests (src/server/responses_request.h),
// without a server.
#include "src/server/responses_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "src/server/api_error.h"
#include "src/server/refused_field.h"

namespace qrun::server {
namespace {

using nlohmann::json;

// The field a refused body names, "" when it is accepted.
std::string refused_field(const std::string& body) {
  return test::refused_field([](const std::string& b) { parse_responses_request(b); }, body);
}

TEST(ResponsesRequest, InputItemsBecomeChatMessages) {
  const ResponsesRequest r = parse_responses_request(R"({
    "model": "gpt-5", "instructions": "Be brief.", "max_output_tokens": 512, "stream": true, "temperature": 0.3,
    "top_p": 0.8, "parallel_tool_calls": false, "store": true, "include": ["reasoning.encrypted_content"],
    "tools": [{"type": "function", "name": "get_weather", "description": "The weather", "strict": true,
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
              {"type": "web_search"}],
    "tool_choice": "auto",
    "input": [
      {"role": "developer", "content": "Use tools."},
      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in "}, {"type": "input_text", "text": "Paris?"}]},
      {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "short"}],
       "content": [{"type": "reasoning_text", "text": "Call the tool."}]},
      {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
      {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
      {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
      {"type": "function_call_output", "call_id": "call_1", "output": "Sunny"},
      {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "Rain"}]},
      {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Answer."}]},
      {"type": "function_call", "call_id": "call_3", "name": "get_weather", "arguments": "{}"},
      {"role": "user", "content": "Thanks"}]})");
  const CompletionRequest& c = r.chat;
  ASSERT_EQ(c.messages.size(), 8u);
  EXPECT_EQ(c.messages[0].role, "system");
  EXPECT_EQ(c.messages[0].content, "Be brief.");
  EXPECT_EQ(c.messages[1].role, "system");
  EXPECT_EQ(c.messages[2].content, "Weather in Paris?");
  const ChatMessage& turn = c.messages[3];
  EXPECT_EQ(turn.role, "assistant");
  EXPECT_EQ(turn.content, "Let me look.");
  EXPECT_EQ(turn.reasoning_content, "Call the tool.");  // the reasoning text, not its summary
  ASSERT_EQ(turn.tool_calls.size(), 2u);
  EXPECT_EQ(turn.tool_calls[0].id, "call_1");
  EXPECT_EQ(turn.tool_calls[1].arguments, R"({"city":"Rome"})");
  EXPECT_EQ(c.messages[4].role, "tool");
  EXPECT_EQ(c.messages[4].tool_call_id, "call_1");
  EXPECT_EQ(c.messages[5].content, "Rain");
  EXPECT_EQ(c.messages[6].role, "assistant");  // calls after tool results are a new turn
  EXPECT_EQ(c.messages[6].reasoning_content, "Answer.");
  EXPECT_EQ(c.messages[6].tool_calls.size(), 1u);
  EXPECT_EQ(c.messages[7].role, "user");
  EXPECT_EQ(c.messages[7].content, "Thanks");
  EXPECT_EQ(c.max_tokens, 512);
  EXPECT_TRUE(c.stream);
  EXPECT_FALSE(c.parallel_tool_calls);
  EXPECT_EQ(c.tools, R"([{"type":"function","function":{"name":"get_weather","description":"The weather",)"
                     R"("parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}])");
  EXPECT_EQ(c.tool_choice, CompletionRequest::ToolChoice::Auto);
  EXPECT_EQ(c.separate_reasoning, true);
  // The response repeats the request's settings as sent.
  EXPECT_EQ(r.echoed["instructions"], "Be brief.");
  EXPECT_EQ(r.echoed["max_output_tokens"], 512);
  EXPECT_EQ(r.echoed["tools"].size(), 2u);
  EXPECT_EQ(r.echoed["parallel_tool_calls"], false);
  EXPECT_EQ(r.echoed["tool_choice"], "auto");
}

TEST(ResponsesRequest, FormatsChoicesAndEffort) {
  const std::string tools = R"("tools": [{"type": "function", "name": "now", "parameters": {"type": "object"}}], )";
  const std::string in = R"("input": "Hi")";
  auto read = [](const std::string& body) { return parse_responses_request(body).chat; };
  EXPECT_EQ(read("{" + in + "}").messages.size(), 1u);
  EXPECT_EQ(read("{" + in + "}").messages[0].role, "user");
  EXPECT_EQ(read("{" + tools + R"("tool_choice": "required", )" + in + "}").tool_choice, CompletionRequest::ToolChoice::Required);
  const CompletionRequest named = read("{" + tools + R"("tool_choice": {"type": "function", "name": "now"}, )" + in + "}");
  EXPECT_EQ(named.tool_name, "now");
  EXPECT_EQ(read("{" + tools + R"("tool_choice": "none", )" + in + "}").tool_choice, CompletionRequest::ToolChoice::None);
  const CompletionRequest schema = read(
      R"({"text": {"format": {"type": "json_schema", "name": "x", "strict": true, "schema": {"type": "object", "properties": {"b": {}, "a": {}}}}}, )" + in + "}");
  EXPECT_TRUE(schema.json_object);
  EXPECT_EQ(schema.json_schema, R"({"type":"object","properties":{"b":{},"a":{}}})");
  const CompletionRequest object = read(R"({"text": {"format": {"type": "json_object"}}, )" + in + "}");
  EXPECT_TRUE(object.json_object);
  EXPECT_EQ(object.json_schema, "");
  EXPECT_FALSE(read(R"({"text": {"format": {"type": "text"}, "verbosity": "low"}, )" + in + "}").json_object);
  EXPECT_EQ(read(R"({"reasoning": {"effort": "none"}, )" + in + "}").chat_template_kwargs,
            R"({"reasoning_effort":"none","enable_thinking":false})");
  EXPECT_EQ(read(R"({"reasoning": {"effort": "high", "summary": "auto"}, )" + in + "}").chat_template_kwargs,
            R"({"reasoning_effort":"high","enable_thinking":true})");
  EXPECT_EQ(read(R"({"reasoning": {"summary": "auto"}, )" + in + "}").chat_template_kwargs, "");
  EXPECT_EQ(read(R"({"seed": 3, "grammar": "root ::= \"a\"", )" + in + "}").seed, 3u);
}

TEST(ResponsesRequest, MalformedBodiesNameTheirField) {
  const std::string in = R"("input": "Hi")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "input"},
      {R"({"input": []})", "input"},
      {R"({"input": 3})", "input"},
      {R"({"input": [3]})", "input[0]"},
      {R"({"input": [{"content": "x"}]})", "input[0].role"},
      {R"({"input": [{"role": "tool", "content": "x"}]})", "input[0].role"},
      {R"({"input": [{"role": "user"}]})", "input[0].content"},
      {R"({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]})", "input[0].content[0]"},
      {R"({"input": [{"role": "user", "content": [{"type": "input_text"}]}]})", "input[0].content[0].text"},
      {R"({"input": [{"role": "user", "content": [{"type": "picture"}]}]})", "input[0].content[0].type"},
      {R"({"input": [{"type": "function_call", "name": "a", "arguments": "{}"}]})", "input[0].call_id"},
      {R"({"input": [{"type": "function_call", "call_id": "c", "name": "a", "arguments": {}}]})", "input[0].arguments"},
      {R"({"input": [{"type": "function_call_output", "call_id": "c"}]})", "input[0].output"},
      {R"({"input": [{"type": "reasoning", "summary": "x"}]})", "input[0].summary"},
      {R"({"input": [{"type": "item_reference", "id": "msg_1"}]})", "input[0]"},
      {R"({"input": [{"type": "web_search_call"}]})", "input[0].type"},
      {R"({"instructions": 1, )" + in + "}", "instructions"},
      {R"({"previous_response_id": "resp_1", )" + in + "}", "previous_response_id"},
      {R"({"conversation": "conv_1", )" + in + "}", "conversation"},
      {R"({"background": true, )" + in + "}", "background"},
      {R"({"tools": [{"name": "a"}], )" + in + "}", "tools[0].type"},
      {R"({"tools": [{"type": "function", "name": "a b"}], )" + in + "}", "tools[0].name"},
      {R"({"tools": [{"type": "function", "name": "a", "parameters": {"type": "string"}}], )" + in + "}", "tools[0].parameters"},
      {R"({"tool_choice": {"type": "allowed_tools"}, )" + in + "}", "tool_choice"},
      {R"({"tool_choice": "required", )" + in + "}", "tool_choice"},
      {R"({"text": {"format": {"type": "yaml"}}, )" + in + "}", "text.format.type"},
      {R"({"text": {"format": {"type": "json_schema"}}, )" + in + "}", "text.format.schema"},
      {R"({"text": {"format": {"type": "json_schema", "schema": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}}, )" + in + "}",
       "text.format.schema"},
      {R"({"max_output_tokens": -2, )" + in + "}", "max_output_tokens"},
      {R"({"reasoning": {"effort": 2}, )" + in + "}", "reasoning.effort"},
  };
  for (const auto& [body, field] : cases) EXPECT_EQ(refused_field(body), field) << body;
  EXPECT_EQ(refused_field(R"({"input": )"), "(none)");
}

}  // namespace
}  // namespace qrun::server
