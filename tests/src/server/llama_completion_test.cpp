// llama.cpp's native POST /completion: its field names and defaults read into the
// completion request, its reply shape whole and streamed, and through a running qserve
// the golden greedy text of stories260K (the same as /v1/completions gives).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/golden.h"
#include "src/server/api_error.h"
#include "src/server/llama_completion_reply.h"
#include "src/server/llama_completion_request.h"
#include "src/server/qserve_process.h"

namespace qrun::server {
namespace {

using json = nlohmann::json;

TEST(LlamaCompletionRequest, TakesLlamaCppNamesAndDefaults) {
  CompletionRequest r = parse_llama_completion_request(R"({"prompt": "Hi", "n_predict": 7})");
  EXPECT_EQ(r.prompt, "Hi");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.temperature, 0.8f);  // llama-server's defaults, not OpenAI's
  EXPECT_EQ(r.top_k, 40);
  EXPECT_FLOAT_EQ(r.top_p, 0.95f);
  EXPECT_FLOAT_EQ(r.min_p, 0.05f);
  EXPECT_FALSE(r.seed.has_value());

  r = parse_llama_completion_request(R"({"prompt": [1, 5, 9], "n_predict": -1, "seed": -1, "temperature": 0,
      "top_k": 0, "stop": ["\n"], "stream": true, "cache_prompt": true, "id_slot": -1, "samplers": ["top_k"],
      "mirostat": 0, "typical_p": 1.0, "dry_multiplier": 0.0, "xtc_probability": 0, "n_probs": 0})");
  EXPECT_EQ(r.prompt_ids, (std::vector<int32_t>{1, 5, 9}));
  EXPECT_FALSE(r.max_tokens.has_value());  // -1: until EOS or the context is full
  EXPECT_FALSE(r.seed.has_value());        // -1: a random seed
  EXPECT_EQ(r.temperature, 0.0f);
  EXPECT_EQ(r.top_k, 0);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r.stream);

  r = parse_llama_completion_request(R"({"prompt": "x", "max_tokens": 3, "seed": 42,
      "json_schema": {"type": "object", "properties": {"z": {"type": "integer"}, "a": {"type": "string"}}}})");
  EXPECT_EQ(r.max_tokens, 3);
  EXPECT_EQ(r.seed, 42u);
  EXPECT_TRUE(r.json_object);
  EXPECT_LT(r.json_schema.find("\"z\""), r.json_schema.find("\"a\"")) << "the schema's key order is kept: " << r.json_schema;
}

TEST(LlamaCompletionRequest, RefusesWhatItCannotDoNamingTheField) {
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"prompt": "x", "mirostat": 2})", "mirostat"},
           {R"({"prompt": "x", "typical_p": 0.5})", "typical_p"},
           {R"({"prompt": "x", "dry_multiplier": 0.8})", "dry_multiplier"},
           {R"({"prompt": "x", "xtc_probability": 0.1})", "xtc_probability"},
           {R"({"prompt": "x", "n_probs": 5})", "n_probs"},
           {R"({"prompt": "x", "n_predict": "ten"})", "n_predict"},
           {R"({"prompt": "x", "n_predict": -2})", "n_predict"},
           {R"({"prompt": "x", "n_predict": 99999999999})", "n_predict"},
           {R"({"prompt": "x", "json_schema": "object"})", "json_schema"},
           {R"({"prompt": "x", "json_schema": {"type": "object", "properties": 3}})", "json_schema"},
           {R"({"n_predict": 4})", "prompt"},
           {R"([1, 2])", ""},
       }) {
    try {
      parse_llama_completion_request(body);
      ADD_FAILURE() << body << " was accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_EQ(e.param, field) << body << ": " << e.what();
    }
  }
}

TEST(LlamaCompletionReply, StopTypesAndTimings) {
  LlamaCompletionReply shape("m.q8", "Once");
  ReplyEnd end;
  end.finish = "length";
  end.usage = {5, 4, 2};
  end.prompt_ms = 30;
  end.eval_ms = 80;
  json j = shape.whole("a\nb", "", {}, end, nullptr);
  EXPECT_EQ(j["content"], "a\nb");
  EXPECT_EQ(j["stop"], true);
  EXPECT_EQ(j["stop_type"], "limit");
  EXPECT_EQ(j["has_new_line"], true);
  EXPECT_EQ(j["prompt"], "Once");
  EXPECT_EQ(j["tokens_predicted"], 4);
  EXPECT_EQ(j["tokens_evaluated"], 5);
  EXPECT_EQ(j["timings"]["prompt_n"], 3);  // the 2 cached tokens were not evaluated
  EXPECT_DOUBLE_EQ(j["timings"]["prompt_per_second"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(j["timings"]["predicted_per_token_ms"].get<double>(), 20.0);
  end.finish = "stop";
  EXPECT_EQ(shape.whole("", "", {}, end, nullptr)["stop_type"], "eos");
  end.stop_string = "The end";
  j = shape.whole("", "", {}, end, nullptr);
  EXPECT_EQ(j["stop_type"], "word");
  EXPECT_EQ(j["stopping_word"], "The end");

  EXPECT_EQ(shape.open(), "");
  EXPECT_EQ(shape.text("", nullptr), "");
  const std::string piece = shape.text(" hi", nullptr);
  ASSERT_TRUE(piece.starts_with("data: ") && piece.ends_with("\n\n")) << piece;
  const json p = json::parse(piece.substr(6));
  EXPECT_EQ(p["content"], " hi");
  EXPECT_EQ(p["stop"], false);
  const std::string last = shape.close({}, end, nullptr);
  EXPECT_EQ(json::parse(last.substr(6))["stop"], true);
  EXPECT_EQ(last.find("[DONE]"), std::string::npos);  // llama-server ends without it
}

// The text of a /completion stream: its events' content up to the one that stops.
std::string streamed_content(const std::string& body, json* last) {
  std::string text;
  for (size_t at = 0; (at = body.find("data: ", at)) != std::string::npos;) {
    const size_t end = body.find("\n\n", at);
    const json e = json::parse(body.substr(at + 6, end - at - 6));
    text += e["content"].get<std::string>();
    *last = e;
    at = end;
  }
  return text;
}

TEST(LlamaCompletionApi, GreedyTextIsTheGoldenWholeAndStreamed) {
  test::Server s({}, DType::F32);
  ASSERT_TRUE(s.ready()) << s.log();
  const auto golden = test::load_golden();
  ASSERT_FALSE(golden.empty());
  for (const auto& c : {golden.front(), golden.back()}) {
    json req = {{"prompt", c.prompt}, {"n_predict", 100}, {"temperature", 0}, {"ignore_eos", true}};
    auto r = test::post(s, "/completion", req);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["content"], c.greedy_text);
    EXPECT_EQ(j["stop_type"], "limit");
    EXPECT_EQ(j["tokens_predicted"], 100);
    EXPECT_EQ(j["tokens_evaluated"], c.prompt_ids.size());

    req["stream"] = true;
    r = test::post(s, "/completions", req);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
    json last;
    EXPECT_EQ(streamed_content(r->body, &last), c.greedy_text);
    EXPECT_EQ(last["stop"], true);
    EXPECT_EQ(last["timings"]["predicted_n"], 100);
  }
  auto r = test::post(s, "/completion", json{{"prompt", "x"}, {"mirostat", 1}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "mirostat") << r->body;
}

}  // namespace
}  // namespace qrun::server
