// llama.cpp's /infill: the FIM tokens found in real vocabularies (Qwen3's has Qwen2.5-Coder's
// set), the prompt laid out as llama.cpp lays it out and cut to the room it has, the body's
// fields, and a model without FIM tokens refused by the server.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "qrun/tokenizer.h"
#include "src/server/api_error.h"
#include "src/server/infill.h"
#include "src/server/qserve_process.h"

namespace qrun::server {
namespace {

using json = nlohmann::json;

const Tokenizer& qwen3() {
  static const Tokenizer t(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));
  return t;
}

std::vector<int32_t> text(const Tokenizer& t, std::string_view s) { return t.encode(s, false, false); }

TEST(Infill, FindsTheFimTokensOfARealVocabulary) {
  const FimTokens fim = find_fim_tokens(qwen3());
  ASSERT_TRUE(fim.usable());
  EXPECT_EQ(qwen3().piece(fim.prefix), "<|fim_prefix|>");
  EXPECT_EQ(qwen3().piece(fim.suffix), "<|fim_suffix|>");
  EXPECT_EQ(qwen3().piece(fim.middle), "<|fim_middle|>");
  EXPECT_EQ(qwen3().piece(fim.repo), "<|repo_name|>");
  EXPECT_EQ(qwen3().piece(fim.file_sep), "<|file_sep|>");
  for (const char* other : {"llama2", "llama3"}) {
    const Tokenizer t(load_hf_tokenizer(test::shared_dir() / "tokenizers" / other));
    EXPECT_FALSE(find_fim_tokens(t).usable()) << other;
  }
}

TEST(Infill, PromptIsLaidOutAsLlamaCppLaysItOut) {
  const Tokenizer& t = qwen3();
  const FimTokens fim = find_fim_tokens(t);
  InfillRequest r = parse_infill_request(R"({"input_prefix": "def add(a, b):\n    ", "input_suffix": "\n\nprint(add(1, 2))\n",
      "prompt": "return", "input_extra": [{"filename": "util.py", "text": "import math\n"}], "n_predict": 16})");
  EXPECT_EQ(r.completion.max_tokens, 16);
  std::vector<int32_t> want{fim.repo};
  for (const auto& part : {text(t, "myproject\n")}) want.insert(want.end(), part.begin(), part.end());
  auto add = [&](std::string_view s) {
    const auto ids = text(t, s);
    want.insert(want.end(), ids.begin(), ids.end());
  };
  want.push_back(fim.file_sep);
  add("util.py\n");
  add("import math\n");
  want.push_back(fim.file_sep);
  add("filename\n");
  want.push_back(fim.prefix);
  add("def add(a, b):\n    ");
  add("return");
  want.push_back(fim.suffix);
  add("\n\nprint(add(1, 2))\n");
  want.push_back(fim.middle);
  EXPECT_EQ(infill_prompt(t, fim, r, 4096), want);  // Qwen's prompts take no BOS
}

TEST(Infill, ALongInputKeepsThePrefixEndAndTheSuffixStart) {
  const Tokenizer& t = qwen3();
  const FimTokens fim = find_fim_tokens(t);
  std::string prefix, suffix;
  for (int i = 0; i < 300; ++i) prefix += "x" + std::to_string(i) + " = " + std::to_string(i) + "\n";
  for (int i = 0; i < 300; ++i) suffix += "y" + std::to_string(i) + " = " + std::to_string(i) + "\n";
  InfillRequest r;
  r.prefix = prefix;
  r.suffix = suffix;
  r.extra = {{"a.py", std::string(2000, 'z')}};
  const std::vector<int32_t> got = infill_prompt(t, fim, r, 203);
  EXPECT_EQ(got.size(), 203u);
  const auto pre = std::find(got.begin(), got.end(), fim.prefix), suf = std::find(got.begin(), got.end(), fim.suffix);
  ASSERT_TRUE(pre != got.end() && suf != got.end() && got.back() == fim.middle);
  EXPECT_EQ(pre, got.begin()) << "no room is left for the extra context";
  const std::vector<int32_t> p = text(t, prefix), s = text(t, suffix);
  const std::vector<int32_t> kept_prefix(pre + 1, suf), kept_suffix(suf + 1, got.end() - 1);
  EXPECT_EQ(kept_prefix.size(), 150u);  // 3/4 of the 200 tokens of code
  EXPECT_TRUE(std::equal(kept_prefix.begin(), kept_prefix.end(), p.end() - kept_prefix.size()));
  EXPECT_EQ(kept_suffix.size(), 50u);
  EXPECT_TRUE(std::equal(kept_suffix.begin(), kept_suffix.end(), s.begin()));
}

TEST(Infill, BodyFieldsAreChecked) {
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"input_prefix": 3})", "input_prefix"},
           {R"({"input_suffix": ["a"]})", "input_suffix"},
           {R"({"input_extra": "a.py"})", "input_extra"},
           {R"({"input_extra": [{"filename": "a.py"}]})", "input_extra[0].text"},
           {R"({"input_extra": [7]})", "input_extra[0]"},
           {R"({"input_prefix": "a", "mirostat": 2})", "mirostat"},
       }) {
    try {
      parse_infill_request(body);
      ADD_FAILURE() << body << " was accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.param, field) << body << ": " << e.what();
    }
  }
  const InfillRequest r = parse_infill_request(R"({"input_suffix": "}"})");  // every input may be left out
  EXPECT_EQ(r.suffix, "}");
  EXPECT_TRUE(r.prefix.empty() && r.typed.empty() && r.extra.empty());
}

TEST(InfillApi, AModelWithoutFimTokensIsRefused) {
  test::Server s({"--workers", "1"});
  ASSERT_TRUE(s.ready()) << s.log();
  const auto r = test::post(s, "/infill", json{{"input_prefix", "def f():"}, {"input_suffix", ""}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("no fill-in-the-middle tokens"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace qrun::server
