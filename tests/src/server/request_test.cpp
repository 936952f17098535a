// OpenAI request bodies to CompletionRequest (src/server/request.h), without a server.
#include "src/server/request.h"

#include <gtest/gtest.h>

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
TEST(ServerRequest, UnsupportedFeaturesAre400AndTheirNullFormsPass) {
  const std::string head = R"({"messages":[{"role":"user","content":"x"}],)";
  for (const std::string field : {R"("logprobs":true)", R"("logprobs":2)", R"("top_logprobs":2)", R"("echo":true)",
                                  R"("suffix":"end")", R"("logit_bias":{"5":-100})", R"("tools":[{"type":"function"}])",
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

// OpenAI's json_schema and llama.cpp's json_object with a schema: the schema's text keeps
// its key order (the model writes properties in it); one qrun cannot compile is a 400
// naming where the schema sits and, in the message, the place inside it.
TEST(ServerRequest, JsonSchemasKeepTheirOrderOrAre400) {
  const std::string head = R"({"messages":[{"role":"user","content":"x"}],)";
  const std::string schema = R"({"type":"object","properties":{"zeta":{"type":"integer"},"alpha":{"type":"string"}}})";
  for (const std::string format : {R"({"type":"json_schema","json_schema":{"name":"n","strict":true,"schema":)" + schema + "}}",
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
