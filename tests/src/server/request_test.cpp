// OpenAI request bodies to CompletionRequest (src/server/request.h), without a server.
#include "src/server/request.h"

#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "src/server/api_error.h"

namespace qrun::server {
namespace {

int status_of(Endpoint e, const std::string& body) {
  try {
    parse_request(e, body);
    return 200;
  } catch (const ApiError& err) {
    return err.status;
  }
}

TEST(ServerRequest, ReadsEveryField) {
  const auto r = parse_request(Endpoint::ChatCompletions,
                               R"({"model":"m","messages":[{"role":"developer","content":"S"},)"
                               R"({"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],)"
                               R"("stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":7,)"
                               R"("temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.1,"seed":42,"stop":"x","n":1})");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.temperature, 0.5f);
  EXPECT_EQ(r.top_k, 40);
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"prompt":["Once"]})").prompt, "Once");
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"prompt":[1, 403, 0]})").prompt_ids, (std::vector<int32_t>{1, 403, 0}));
  for (const std::string body : {R"({"prompt":["a","b"]})", R"({"prompt":[1,"a"]})", R"({"prompt":[-1]})",
                                 R"({"prompt":[4294967296]})", R"({"prompt":[1.5]})", R"({"prompt":[]})"})
    EXPECT_EQ(status_of(Endpoint::Completions, body), 400) << body;
}

// Found by fuzz/server_request_fuzz.cpp: a number beyond double's range made
// nlohmann::json throw out_of_range, not parse_error, and it escaped as a 500.
TEST(ServerRequest, MalformedBodiesAre400) {
  for (const std::string body : {"5e10151n\"11\xb9:", "{\"prompt\": 1e999}", "", "{", "[]", "\"x\"", "{\"prompt\":\"a\"}x"})
    EXPECT_EQ(status_of(Endpoint::Completions, body), 400) << body;
  for (const std::string body : {R"({"messages":[]})", R"({"messages":[{"role":"bot","content":"x"}]})",
                                 R"({"messages":[{"role":"user"}]})", R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
                                 R"({"messages":[{"role":"user","content":"x"}],"top_p":2})",
                                 R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-1})",
                                 R"({"messages":[{"role":"user","content":"x"}],"seed":"a"})"})
    EXPECT_EQ(status_of(Endpoint::ChatCompletions, body), 400) << body;
}

// What qrun does not do is refused by name, not silently dropped; asking for nothing passes.
// OpenAI's logit_bias by id (a key), llama.cpp's list of [id, bias]; -100 or false bans.
TEST(ServerRequest, LogitBias) {
  const std::string head = R"({"messages":[{"role":"user","content":"x"}],)";
  const auto bias = [&](const std::string& field) { return parse_request(Endpoint::ChatCompletions, head + field + "}").logit_bias; };
  const auto a = bias(R"("logit_bias":{"15043":2.5,"7":-100})");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0], (std::pair<int32_t, float>{15043, 2.5f}));
  EXPECT_EQ(a[1].first, 7);
  EXPECT_TRUE(std::isinf(a[1].second) && a[1].second < 0);
  const auto b = bias(R"("logit_bias":[[3,-1],[4,false]])");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0], (std::pair<int32_t, float>{3, -1.0f}));
  EXPECT_TRUE(std::isinf(b[1].second));
  EXPECT_TRUE(bias(R"("logit_bias":null)").empty());
}

TEST(ServerRequest, UnsupportedFeaturesAre400AndTheirNullFormsPass) {
  const std::string head = R"({"messages":[{"role":"user","content":"x"}],)";
  for (const std::string field : {R"("logprobs":2)", R"("top_logprobs":2)", R"("echo":true)",
                                  R"("suffix":"end")", R"("logit_bias":{"a":1})", R"("logit_bias":{"5":101})",
                                  R"("logit_bias":[[5]])", R"("logit_bias":"5")", R"("logit_bias":{"-1":1})",
                                  R"("functions":[{"name":"f"}])", R"("best_of":2)", R"("response_format":"json")",
                                  R"("response_format":{"type":"xml"})",
                                  R"("stream_options":{"include_usage":true})", R"("frequency_penalty":2.5)",
                                  R"("presence_penalty":"x")"}) {
    try {
      parse_request(Endpoint::ChatCompletions, head + field + "}");
      ADD_FAILURE() << field << " accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_FALSE(e.param.empty()) << field;
      EXPECT_NE(field.find(e.param), std::string::npos) << field << " refused naming '" << e.param << "'";
    }
  }
  for (const std::string field : {R"("logprobs":false)", R"("logprobs":null)", R"("top_logprobs":0)", R"("echo":false)",
                                  R"("suffix":"")", R"("logit_bias":{})", R"("tools":[])", R"("best_of":1)",
                                  R"("response_format":{"type":"text"})", R"("response_format":{"type":"json_object"})",
                                  R"("tool_choice":"none")"})
    EXPECT_EQ(status_of(Endpoint::ChatCompletions, head + field + "}"), 200) << field;
  EXPECT_TRUE(parse_request(Endpoint::ChatCompletions, head + R"("response_format":{"type":"json_object"}})").json_object);
  EXPECT_FALSE(parse_request(Endpoint::ChatCompletions, head + R"("response_format":{"type":"text"}})").json_object);
  const auto r = parse_request(Endpoint::Completions, R"({"prompt":"a","frequency_penalty":0.5,"presence_penalty":-1})");
  EXPECT_FLOAT_EQ(r.frequency_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.presence_penalty, -1.0f);
}

// Chat: logprobs true with top_logprobs 0-20; completions: logprobs 0-5 (the legacy count
// of alternatives). Anything else is a 400 naming the field.
TEST(ServerRequest, LogprobsAsEachApiTakesThem) {
  const std::string chat = R"({"messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, chat + "}").logprobs, -1);
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, chat + R"(,"logprobs":true})").logprobs, 0);
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, chat + R"(,"logprobs":true,"top_logprobs":20})").logprobs, 20);
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, chat + R"(,"logprobs":false,"top_logprobs":null})").logprobs, -1);
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"prompt":"a","logprobs":5})").logprobs, 5);
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"prompt":"a","logprobs":0})").logprobs, 0);
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"prompt":"a","logprobs":null})").logprobs, -1);
  const std::pair<Endpoint, std::string> bad[] = {
      {Endpoint::ChatCompletions, chat + R"(,"logprobs":true,"top_logprobs":21})"},
      {Endpoint::ChatCompletions, chat + R"(,"logprobs":true,"top_logprobs":-1})"},
      {Endpoint::ChatCompletions, chat + R"(,"logprobs":false,"top_logprobs":3})"},
      {Endpoint::ChatCompletions, chat + R"(,"logprobs":"yes"})"},
      {Endpoint::Completions, R"({"prompt":"a","logprobs":6})"},
      {Endpoint::Completions, R"({"prompt":"a","logprobs":true})"},
      {Endpoint::Completions, R"({"prompt":"a","top_logprobs":2})"}};
  for (const auto& [endpoint, body] : bad) {
    try {
      parse_request(endpoint, body);
      ADD_FAILURE() << body << " accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_NE(body.find("\"" + e.param + "\""), std::string::npos) << body << " refused naming '" << e.param << "'";
    }
  }
}

// OpenAI's tools: the list reaches the template in its own key order; tool_choice picks
// whether a call is read, required, or required of one tool (whose schema is compiled
// here); history messages carry calls and the ids they answer; anything malformed is a
// 400 naming the field.
TEST(ServerRequest, ToolsAreReadOrAre400NamingTheField) {
  using Choice = CompletionRequest::ToolChoice;
  const std::string tools = R"("tools":[{"type":"function","function":{"name":"get_weather","description":"d",)"
                            R"("parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},)"
                            R"({"type":"function","function":{"name":"now"}}])";
  const std::string head = R"({"messages":[{"role":"user","content":"x"}],)";
  CompletionRequest r = parse_request(Endpoint::ChatCompletions, head + tools + "}");
  EXPECT_EQ(r.tool_choice, Choice::Auto);
  EXPECT_EQ(r.tools.find(R"({"type":"function","function":{"name":"get_weather","description":"d")"), 1u) << r.tools;
  EXPECT_TRUE(r.tool_name.empty());
  r = parse_request(Endpoint::ChatCompletions, head + tools + R"(,"tool_choice":"required","parallel_tool_calls":false})");
  EXPECT_EQ(r.tool_choice, Choice::Required);
  EXPECT_FALSE(r.parallel_tool_calls);
  EXPECT_TRUE(r.tool_name.empty());
  r = parse_request(Endpoint::ChatCompletions, head + tools + R"(,"tool_choice":{"type":"function","function":{"name":"now"}}})");
  EXPECT_EQ(r.tool_choice, Choice::Required);
  EXPECT_EQ(r.tool_name, "now");
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, head + tools + R"(,"tool_choice":"none"})").tool_choice, Choice::None);
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, head + R"("tool_choice":"auto"})").tool_choice, Choice::None);

  // A conversation that called tools: the assistant's calls (content null) and the replies.
  r = parse_request(Endpoint::ChatCompletions,
                    R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[)"
                    R"({"id":"call_1","type":"function","function":{"name":"now","arguments":"{}"}},)"
                    R"({"id":"call_2","type":"function","function":{"name":"get_weather","arguments":{"city":"Rome"}}}]},)"
                    R"({"role":"tool","tool_call_id":"call_1","content":"12:00"}],)" + tools + "}");
  ASSERT_EQ(r.messages.size(), 3u);
  ASSERT_EQ(r.messages[1].tool_calls.size(), 2u);
  EXPECT_EQ(r.messages[1].content, "");
  EXPECT_EQ(r.messages[1].tool_calls[0].id, "call_1");
  EXPECT_EQ(r.messages[1].tool_calls[1].arguments, R"({"city":"Rome"})");
  EXPECT_EQ(r.messages[2].tool_call_id, "call_1");
  r = parse_request(Endpoint::ChatCompletions, head + R"("chat_template_kwargs":{"enable_thinking":false,"a":[1]}})");
  EXPECT_EQ(r.chat_template_kwargs, R"({"enable_thinking":false,"a":[1]})");
  EXPECT_EQ(status_of(Endpoint::Completions, R"({"prompt":"a","chat_template_kwargs":{}})"), 400);
  // reasoning_effort: gpt-oss's template variable and Qwen3's switch, unless the kwargs set them.
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, head + R"("reasoning_effort":"low"})").chat_template_kwargs,
            R"({"reasoning_effort":"low","enable_thinking":true})");
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, head + R"("reasoning_effort":"none"})").chat_template_kwargs,
            R"({"reasoning_effort":"none","enable_thinking":false})");
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions,
                          head + R"("reasoning_effort":"high","chat_template_kwargs":{"enable_thinking":false}})")
                .chat_template_kwargs,
            R"({"enable_thinking":false,"reasoning_effort":"high"})");
  EXPECT_EQ(status_of(Endpoint::Completions, R"({"prompt":"a","reasoning_effort":"low"})"), 400);

  const std::pair<std::string, std::string> bad[] = {
      {head + R"("tools":{"type":"function"}})", "tools"},
      {head + R"("tools":[{"type":"function"}]})", "tools[0].function"},
      {head + R"("tools":[{"type":"code","function":{"name":"f"}}]})", "tools[0].type"},
      {head + R"("tools":[{"type":"function","function":{"name":"a b"}}]})", "tools[0].function.name"},
      {head + R"("tools":[{"type":"function","function":{"name":"f","parameters":[]}}]})", "tools[0].function.parameters"},
      {head + R"("tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]})",
       "tools[1].function.name"},
      {head + R"("tool_choice":"required"})", "tool_choice"},
      {head + tools + R"(,"tool_choice":"always"})", "tool_choice"},
      {head + tools + R"(,"tool_choice":{"type":"function","function":{"name":"other"}}})", "tool_choice"},
      {head + R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":)"
              R"({"s":{"type":"string","pattern":"^a"}}}}}],"tool_choice":"required"})",
       "tools[0].function.parameters"},
      {head + tools + R"(,"tool_choice":"required","response_format":{"type":"json_object"}})", "tool_choice"},
      {head + tools + R"(,"parallel_tool_calls":"yes"})", "parallel_tool_calls"},
      {head + tools + R"(,"tool_choice":{"type":"function","function":{"name":""}}})", "tool_choice"},
      {head + R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"string"}}}]})",
       "tools[0].function.parameters"},
      {head + R"("tools":[{"type":"function","function":{"name":"f","parameters":{"enum":["a"]}}}]})",
       "tools[0].function.parameters"},
      {head + R"("tools":[{"type":"function","function":{"name":"f","parameters":{"anyOf":[{"type":"string"}]}}}]})",
       "tools[0].function.parameters"},
      {head + R"("chat_template_kwargs":[1]})", "chat_template_kwargs"},
      {head + R"("chat_template_kwargs":{"messages":[]}})", "chat_template_kwargs"},
      {head + R"("reasoning_effort":"max"})", "reasoning_effort"},
      {head + R"("reasoning_effort":1})", "reasoning_effort"},
      {R"({"messages":[{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"f","arguments":5}}]}]})",
       "messages[0].tool_calls[0].function.arguments"},
      {R"({"messages":[{"role":"assistant","tool_calls":{}}]})", "messages[0].tool_calls"},
      {R"({"messages":[{"role":"tool","content":"x","tool_call_id":7}]})", "messages[0].tool_call_id"},
  };
  for (const auto& [body, param] : bad) {
    try {
      parse_request(Endpoint::ChatCompletions, body);
      ADD_FAILURE() << body << " accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.param, param) << body << ": " << e.what();
    }
  }
  EXPECT_EQ(status_of(Endpoint::Completions, R"({"prompt":"a",)" + tools + "}"), 400);
  EXPECT_EQ(status_of(Endpoint::Completions, R"({"prompt":"a","tools":[]})"), 200);
  // The unsupported schema is fine when no call is required: it only describes the tool.
  EXPECT_EQ(status_of(Endpoint::ChatCompletions, head + R"("tools":[{"type":"function","function":{"name":"f",)"
                                                          R"("parameters":{"type":"object","properties":{"s":{"pattern":"^a"}}}}}]})"),
            200);
  // JSON nested past what a chat template holds is refused before anything copies it (a
  // copy or dump of 100,000 levels would overflow the stack).
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const auto& [body, param] : std::vector<std::pair<std::string, std::string>>{
           {head + R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","a":)" + deep + "}}}]}", "tools"},
           {head + R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","a":)" +
                std::string(70, '[') + std::string(70, ']') + "}}}]}", "tools"},
           {R"({"messages":[{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"f","arguments":{"a":)" +
                deep + "}}}]}]}", "messages[0].tool_calls[0].function.arguments"},
           {head + R"("chat_template_kwargs":{"a":)" + deep + "}}", "chat_template_kwargs"}}) {
    try {
      parse_request(Endpoint::ChatCompletions, body);
      ADD_FAILURE() << param << " accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.param, param) << e.what();
    }
  }
}

// OpenAI's json_schema and llama.cpp's json_object with a schema: the schema's text keeps
// its key order (the model writes properties in it); one qrun cannot compile is a 400
// naming where the schema sits and, in the message, the place inside it.
TEST(ServerRequest, JsonSchemasKeepTheirOrderOrAre400) {
  const std::string head = R"({"messages":[{"role":"user","content":"x"}],)";
  const std::string schema = R"({"type":"object","properties":{"zeta":{"type":"integer"},"alpha":{"type":"string"}}})";
  for (const std::string& format : {R"({"type":"json_schema","json_schema":{"name":"n","strict":true,"schema":)" + schema + "}}",
                                   R"({"type":"json_object","schema":)" + schema + "}"}) {
    const auto r = parse_request(Endpoint::ChatCompletions, head + R"("response_format":)" + format + "}");
    EXPECT_TRUE(r.json_object);
    EXPECT_LT(r.json_schema.find("zeta"), r.json_schema.find("alpha")) << r.json_schema;
    EXPECT_EQ(nlohmann::json::parse(r.json_schema), nlohmann::json::parse(schema));
  }
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, head + R"("response_format":{"type":"json_object"}})").json_schema, "");
  const auto refused = [&](const std::string& format, const std::string& param, const std::string& says) {
    try {
      parse_request(Endpoint::ChatCompletions, head + R"("response_format":)" + format + "}");
      ADD_FAILURE() << format << " accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.param, param) << format;
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << format << ": " << e.what();
    }
  };
  refused(R"({"type":"json_schema"})", "response_format.json_schema", "schema");
  refused(R"({"type":"json_schema","json_schema":{"name":"n"}})", "response_format.json_schema", "schema");
  refused(R"({"type":"json_schema","json_schema":{"schema":{"properties":{"a":{"type":"string","pattern":"x"}}}}})",
          "response_format.json_schema.schema", "/properties/a/pattern");
  refused(R"({"type":"json_object","schema":{"$ref":"#"}})", "response_format.schema", "left recursion");
  refused(R"({"type":"json_object","schema":[1]})", "response_format.schema", "must be an object");
  // llama.cpp's "grammar": GBNF text, checked here, alone.
  EXPECT_EQ(parse_request(Endpoint::ChatCompletions, head + R"("grammar":"root ::= \"a\""})").grammar, "root ::= \"a\"");
  const auto grammar_refused = [&](const std::string& field, const std::string& says) {
    try {
      parse_request(Endpoint::ChatCompletions, head + field + "}");
      ADD_FAILURE() << field << " accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.param, "grammar") << field;
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << field << ": " << e.what();
    }
  };
  grammar_refused(R"("grammar":"root ::= valu")", "unknown rule \"valu\"");
  grammar_refused(R"("grammar":5)", "must be a string");
  grammar_refused(R"("grammar":"root ::= \"a\"","response_format":{"type":"json_object"})", "cannot be combined");
  // Deep nesting is refused before anything recurses into it (dump() did, and overflowed the stack).
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  refused(R"({"type":"json_schema","json_schema":{"name":"n","schema":)" + deep + "}}",
          "response_format.json_schema.schema", "nested deeper");
}

}  // namespace
}  // namespace qrun::server

namespace qrun::server {
namespace {

// /v1/embeddings bodies in each shape OpenAI takes, and the 400s naming the field.
TEST(EmbeddingRequestBody, ReadsEveryShapeOrIs400NamingTheField) {
  EmbeddingRequest r = parse_embedding_request(R"({"input": "a cat", "model": "m"})");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].text, "a cat");
  EXPECT_FALSE(r.base64 || r.dimensions);
  r = parse_embedding_request(R"({"input": ["a", "b c"], "encoding_format": "base64", "dimensions": 16})");
  ASSERT_EQ(r.inputs.size(), 2u);
  EXPECT_EQ(r.inputs[1].text, "b c");
  EXPECT_TRUE(r.base64);
  EXPECT_EQ(r.dimensions, 16);
  r = parse_embedding_request(R"({"input": [1, 403, 0]})");
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].ids, (std::vector<int32_t>{1, 403, 0}));
  r = parse_embedding_request(R"({"input": [[1, 2], [3], "x"], "encoding_format": "float", "dimensions": null})");
  ASSERT_EQ(r.inputs.size(), 3u);
  EXPECT_EQ(r.inputs[1].ids, std::vector<int32_t>{3});
  EXPECT_EQ(r.inputs[2].text, "x");
  const std::pair<std::string, std::string> bad[] = {
      {R"({})", "input"},
      {R"({"input": null})", "input"},
      {R"({"input": ""})", "input"},
      {R"({"input": []})", "input"},
      {R"({"input": 7})", "input"},
      {R"({"input": ["a", ""]})", "input[1]"},
      {R"({"input": ["a", [[1]]]})", "input[1]"},
      {R"({"input": ["a", {"text": "b"}]})", "input[1]"},
      {R"({"input": [1, "a"]})", "input"},
      {R"({"input": [1, -1]})", "input"},
      {R"({"input": [1.5]})", "input"},
      {R"({"input": [4294967296]})", "input"},
      {R"({"input": [[1], [2, 2.5]]})", "input[1]"},
      {R"({"input": "a", "encoding_format": "hex"})", "encoding_format"},
      {R"({"input": "a", "dimensions": 0})", "dimensions"},
      {R"({"input": "a", "dimensions": "8"})", "dimensions"},
      {R"({"input": "a", "model": 3})", "model"},
  };
  for (const auto& [body, field] : bad) {
    try {
      parse_embedding_request(body);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_EQ(e.param, field) << body << ": " << e.what();
    }
  }
  std::string many = R"({"input": [)";
  for (size_t i = 0; i <= kMaxEmbeddingInputs; ++i) many += std::string(i ? "," : "") + "\"a\"";
  EXPECT_THROW(parse_embedding_request(many + "]}"), ApiError);
}

}  // namespace
}  // namespace qrun::server
