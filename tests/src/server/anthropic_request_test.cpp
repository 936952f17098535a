// Anthropic Messages bodies read into OpenAI chat requests (src/server/anthropic_request.h),
// then by parse_request as the server does, without a server.
#include "src/server/anthropic_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "src/server/api_error.h"
#include "src/server/refused_field.h"
#include "src/server/request.h"

namespace qrun::server {
namespace {

using nlohmann::json;

CompletionRequest read(const std::string& anthropic_body) {
  return parse_anthropic_request(anthropic_body);
}

// The field a refused body names, "" when it is accepted.
std::string refused_field(const std::string& body) {
  return test::refused_field([](const std::string& b) { read(b); }, body);
}

TEST(AnthropicRequest, AToolRoundTripBecomesOpenAisMessages) {
  const CompletionRequest r = read(R"({
    "model": "claude-x", "max_tokens": 1024, "stream": true, "temperature": 0.2, "top_p": 0.9, "top_k": 7,
    "stop_sequences": ["END", "\n\nHuman:"], "metadata": {"user_id": "u"},
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
               {"type": "text", "text": "Use tools."}],
    "tools": [{"name": "get_weather", "description": "The weather",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
              {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
    "messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Call the tool.", "signature": "abc"},
        {"type": "redacted_thinking", "data": "xyz"},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "Sunny"}, {"type": "text", "text": "20 C"}]},
        {"type": "tool_result", "tool_use_id": "toolu_02", "content": "timeout", "is_error": true},
        {"type": "text", "text": "Thanks."}, {"type": "text", "text": "And Rome?"}]}]})");
  ASSERT_EQ(r.messages.size(), 6u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "Be brief.\n\nUse tools.");
  EXPECT_EQ(r.messages[1].role, "user");
  EXPECT_EQ(r.messages[1].content, "Weather in Paris?");
  const ChatMessage& turn = r.messages[2];
  EXPECT_EQ(turn.role, "assistant");
  EXPECT_EQ(turn.content, "Let me look.");
  EXPECT_EQ(turn.reasoning_content, "Call the tool.");
  ASSERT_EQ(turn.tool_calls.size(), 1u);
  EXPECT_EQ(turn.tool_calls[0].id, "toolu_01");
  EXPECT_EQ(turn.tool_calls[0].name, "get_weather");
  EXPECT_EQ(json::parse(turn.tool_calls[0].arguments), json({{"city", "Paris"}}));
  EXPECT_EQ(r.messages[3].role, "tool");
  EXPECT_EQ(r.messages[3].tool_call_id, "toolu_01");
  EXPECT_EQ(r.messages[3].content, "Sunny\n\n20 C");
  EXPECT_EQ(r.messages[4].content, "Error: timeout");
  EXPECT_EQ(r.messages[5].role, "user");
  EXPECT_EQ(r.messages[5].content, "Thanks.\n\nAnd Rome?");
  EXPECT_EQ(r.max_tokens, 1024);
  EXPECT_TRUE(r.stream);
  EXPECT_FLOAT_EQ(r.temperature, 0.2f);
  EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  EXPECT_EQ(r.top_k, 7);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"END", "\n\nHuman:"}));
  EXPECT_EQ(r.model, "claude-x");
  // The custom tool only, its schema's keys in the client's order.
  EXPECT_EQ(r.tools, R"([{"type":"function","function":{"name":"get_weather","description":"The weather",)"
                     R"("parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}])");
  EXPECT_EQ(r.tool_choice, CompletionRequest::ToolChoice::Auto);
  EXPECT_FALSE(r.parallel_tool_calls);
  EXPECT_EQ(r.separate_reasoning, true);  // thinking comes back as thinking blocks
}

TEST(AnthropicRequest, ToolChoiceThinkingAndOutputFormat) {
  const std::string tools = R"("tools": [{"name": "now", "input_schema": {"type": "object"}}], )";
  const std::string hi = R"("messages": [{"role": "user", "content": "Hi"}])";
  EXPECT_EQ(read("{" + tools + R"("tool_choice": {"type": "any"}, )" + hi + "}").tool_choice,
            CompletionRequest::ToolChoice::Required);
  const CompletionRequest named = read("{" + tools + R"("tool_choice": {"type": "tool", "name": "now"}, )" + hi + "}");
  EXPECT_EQ(named.tool_choice, CompletionRequest::ToolChoice::Required);
  EXPECT_EQ(named.tool_name, "now");
  EXPECT_EQ(read("{" + tools + R"("tool_choice": {"type": "none"}, )" + hi + "}").tool_choice,
            CompletionRequest::ToolChoice::None);
  EXPECT_EQ(read("{" + tools + hi + "}").tool_choice, CompletionRequest::ToolChoice::Auto);
  EXPECT_EQ(read(R"({"thinking": {"type": "enabled", "budget_tokens": 2048}, )" + hi + "}").chat_template_kwargs,
            R"({"enable_thinking":true})");
  EXPECT_EQ(read(R"({"thinking": {"type": "disabled"}, "chat_template_kwargs": {"x": 1}, )" + hi + "}").chat_template_kwargs,
            R"({"x":1,"enable_thinking":false})");
  EXPECT_EQ(read("{" + hi + "}").chat_template_kwargs, "");
  const CompletionRequest structured =
      read(R"({"output_format": {"type": "json_schema", "schema": {"type": "object", "properties": {"b": {}, "a": {}}}}, )" + hi + "}");
  EXPECT_TRUE(structured.json_object);
  EXPECT_EQ(structured.json_schema, R"({"type":"object","properties":{"b":{},"a":{}}})");
  const CompletionRequest extended = read(R"({"seed": 5, "min_p": 0.1, "grammar": "root ::= \"a\"", "reasoning_format": "none", )" + hi + "}");
  EXPECT_EQ(extended.seed, 5u);
  EXPECT_EQ(extended.grammar, "root ::= \"a\"");
  EXPECT_EQ(extended.separate_reasoning, false);
  EXPECT_FALSE(read("{" + hi + "}").max_tokens.has_value());  // count_tokens bodies have none
}

TEST(AnthropicRequest, MalformedBodiesNameTheirField) {
  const std::string hi = R"("messages": [{"role": "user", "content": "Hi"}])";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "messages"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": "Hi"})", "messages"},
      {R"({"messages": [3]})", "messages[0]"},
      {R"({"messages": [{"role": "system", "content": "S"}]})", "messages[0].role"},
      {R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]})", "messages[0].content[0]"},
      {R"({"messages": [{"role": "user", "content": [{"text": "x"}]}]})", "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]})", "messages[0].content[0].text"},
      {R"({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]})",
       "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]})",
       "messages[0].content[0].tool_use_id"},
      {R"({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": [{"type": "image"}]}]}]})",
       "messages[0].content[0].content[0]"},
      {R"({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "is_error": "yes"}]}]})",
       "messages[0].content[0].is_error"},
      {R"({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": [1]}]}]})",
       "messages[0].content[0].input"},
      {R"({"system": 4, )" + hi + "}", "system"},
      {R"({"stop_sequences": "END", )" + hi + "}", "stop_sequences"},
      {R"({"stop_sequences": [1], )" + hi + "}", "stop_sequences"},
      {R"({"tools": {}, )" + hi + "}", "tools"},
      {R"({"tools": [{"name": "a"}], )" + hi + "}", "tools[0].input_schema"},
      {R"({"tools": [{"input_schema": {"type": "object"}}], )" + hi + "}", "tools[0].name"},
      {R"({"tools": [{"name": "a", "description": 2, "input_schema": {"type": "object"}}], )" + hi + "}", "tools[0].description"},
      // The chat reader's refusals, named as Anthropic's API spells the field.
      {R"({"tools": [{"name": "a b", "input_schema": {"type": "object"}}], )" + hi + "}", "tools[0].name"},
      {R"({"tools": [{"name": "a", "input_schema": {"type": "string"}}], )" + hi + "}", "tools[0].input_schema"},
      {R"({"output_format": {"type": "json_schema", "schema": {"type": "object", "properties": {"a": {"$ref": "#/x"}}}}, )" + hi + "}",
       "output_format.schema"},
      {R"({"tool_choice": "auto", )" + hi + "}", "tool_choice"},
      {R"({"tool_choice": {"type": "some"}, )" + hi + "}", "tool_choice.type"},
      {R"({"tool_choice": {"type": "tool"}, )" + hi + "}", "tool_choice.name"},
      {R"({"tool_choice": {"type": "any"}, )" + hi + "}", "tool_choice"},  // no tools to call
      {R"({"thinking": {"type": "on"}, )" + hi + "}", "thinking.type"},
      {R"({"thinking": true, )" + hi + "}", "thinking"},
      {R"({"output_format": {"type": "json_object"}, )" + hi + "}", "output_format"},
      {R"({"output_format": {"type": "json_schema"}, )" + hi + "}", "output_format.schema"},
      {R"({"max_tokens": -1, )" + hi + "}", "max_tokens"},
      {R"({"temperature": "hot", )" + hi + "}", "temperature"},
      {R"({"chat_template_kwargs": [], )" + hi + "}", "chat_template_kwargs"},
  };
  for (const auto& [body, field] : cases) EXPECT_EQ(refused_field(body), field) << body;
  EXPECT_EQ(refused_field(R"({"messages": )"), "(none)");  // malformed JSON
  EXPECT_EQ(refused_field("[1]"), "(none)");
  std::string deep(200, '[');
  deep += std::string(200, ']');
  EXPECT_EQ(refused_field(R"({"metadata": )" + deep + ", " + hi + "}"), "(none)");
}

TEST(AnthropicRequest, ErrorBodiesAreAnthropics) {
  const json e = json::parse(anthropic_error_body(400, "'messages' is required"));
  EXPECT_EQ(e["type"], "error");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["message"], "'messages' is required");
  EXPECT_EQ(json::parse(anthropic_error_body(401, "x"))["error"]["type"], "authentication_error");
  EXPECT_EQ(json::parse(anthropic_error_body(404, "x"))["error"]["type"], "not_found_error");
  EXPECT_EQ(json::parse(anthropic_error_body(413, "x"))["error"]["type"], "request_too_large");
  EXPECT_EQ(json::parse(anthropic_error_body(500, "x"))["error"]["type"], "api_error");
  EXPECT_EQ(json::parse(anthropic_error_body(503, "x"))["error"]["type"], "overloaded_error");
}

}  // namespace
}  // namespace qrun::server
