// Log-probabilities of sampled tokens against a straightforward reference (long double
// log-softmax), and the completions API's shape of them.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "src/server/logprobs.h"

namespace qrun::server {
namespace {

long double reference_logprob(const std::vector<float>& logits, size_t id) {
  long double sum = 0;
  for (const float l : logits) sum += std::exp(static_cast<long double>(l));
  return static_cast<long double>(logits[id]) - std::log(sum);
}

TEST(Logprobs, LogSoftmaxAndTopTokensMatchAReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 6.0f);
  for (const size_t vocab : {1u, 7u, 512u, 32000u}) {
    std::vector<float> logits(vocab);
    for (float& l : logits) l = normal(rng);
    const int32_t id = static_cast<int32_t>(vocab / 2);
    const SampledLogprobs lp = sampled_logprobs(logits, id, 5);
    EXPECT_NEAR(lp.chosen.logprob, static_cast<double>(reference_logprob(logits, size_t(id))), 1e-9) << vocab;
    ASSERT_EQ(lp.top.size(), std::min<size_t>(5, vocab));
    for (size_t k = 0; k < lp.top.size(); ++k) {
      EXPECT_NEAR(lp.top[k].logprob, static_cast<double>(reference_logprob(logits, size_t(lp.top[k].id))), 1e-9);
      if (k > 0) EXPECT_GE(lp.top[k - 1].logprob, lp.top[k].logprob);
      // Nothing outside the top is more likely than its last.
      for (size_t i = 0; i < vocab; ++i)
        if (std::find_if(lp.top.begin(), lp.top.end(), [&](const TokenLogprob& t) { return t.id == int32_t(i); }) == lp.top.end())
          EXPECT_LE(logits[i], logits[size_t(lp.top.back().id)]);
    }
    if (vocab > 512) continue;
    double total = 0;
    for (size_t i = 0; i < vocab; ++i) total += std::exp(sampled_logprobs(logits, int32_t(i), 0).chosen.logprob);
    EXPECT_NEAR(total, 1.0, 1e-9);
  }
  // Large logits do not overflow; masked rows (-inf) are impossible: -9999 as OpenAI says;
  // ties go to the lower id.
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {1000.0f, 1000.0f, -inf, 999.0f};
  const SampledLogprobs lp = sampled_logprobs(logits, 2, 4);
  EXPECT_EQ(lp.chosen.logprob, kNoLogprob);
  EXPECT_NEAR(sampled_logprobs(logits, 0, 0).chosen.logprob, -std::log(2.0 + std::exp(-1.0)), 1e-12);
  ASSERT_EQ(lp.top.size(), 4u);
  EXPECT_EQ(lp.top[0].id, 0);
  EXPECT_EQ(lp.top[1].id, 1);
  EXPECT_EQ(lp.top[2].id, 3);
  EXPECT_EQ(lp.top[3].id, 2);
  EXPECT_TRUE(sampled_logprobs(logits, 0, 0).top.empty());
}

TEST(Logprobs, CompletionsShapeCountsOffsetsInBytes) {  // and names the chosen token among the top
  const nlohmann::json entries = nlohmann::json::parse(R"([
      {"token": " h\u00e9", "logprob": -0.5, "bytes": [32, 104, 195, 169],
       "top_logprobs": [{"token": " h\u00e9", "logprob": -0.5, "bytes": [32, 104, 195, 169]},
                        {"token": " a", "logprob": -1.5, "bytes": [32, 97]}]},
      {"token": "!", "logprob": -0.25, "bytes": [33], "top_logprobs": []}])");
  const nlohmann::json c = completion_logprobs(entries, 10);
  EXPECT_EQ(c["tokens"], nlohmann::json({" h\u00e9", "!"}));
  EXPECT_EQ(c["token_logprobs"], nlohmann::json({-0.5, -0.25}));
  EXPECT_EQ(c["text_offset"], nlohmann::json({10, 14}));
  EXPECT_EQ(c["top_logprobs"][0], nlohmann::json({{" h\u00e9", -0.5}, {" a", -1.5}}));
  EXPECT_EQ(c["top_logprobs"][1], nlohmann::json({{"!", -0.25}}));  // the chosen token too, as OpenAI's
}

}  // namespace
}  // namespace qrun::server
