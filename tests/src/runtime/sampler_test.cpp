#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "qrun/sampler.h"

namespace qrun {
namespace {

std::vector<float> logits_of(std::vector<double> probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

SamplerConfig plain(float temp) {
  SamplerConfig c;
  c.temperature = temp;
  c.top_k = 0;
  c.top_p = 1;
  c.min_p = 0;
  c.repeat_penalty = 1;
  return c;
}

TEST(Sampler, GreedyIsArgmax) {
  Sampler s(plain(0));
  auto l = logits_of({0.1, 0.5, 0.4});
  EXPECT_EQ(s.sample(l, {}), 1);
}

TEST(Sampler, TopKOneIsArgmaxAtAnyTemperature) {
  SamplerConfig c = plain(5.0f);
  c.top_k = 1;
  Sampler s(c);
  for (int i = 0; i < 50; ++i) {
    auto l = logits_of({0.2, 0.3, 0.5});
    EXPECT_EQ(s.sample(l, {}), 2);
  }
}

// OpenAI's logit_bias: added to the logits before anything else; -inf bans a token at
// any temperature; an id outside the logits is ignored.
TEST(Sampler, LogitBiasIsAddedFirst) {
  SamplerConfig c = plain(0);
  c.logit_bias = {{1, -1.0f}, {2, 0.5f}, {7, 100.0f}};
  Sampler greedy(c);
  std::vector<float> l = {1.0f, 1.9f, 0.6f};
  EXPECT_EQ(greedy.sample(l, {}), 2);  // 1.0, 0.9, 1.1
  EXPECT_FLOAT_EQ(l[1], 0.9f);
  c = plain(2.0f);
  c.logit_bias = {{0, -INFINITY}};
  Sampler sampled(c);
  for (int i = 0; i < 200; ++i) {
    auto p = logits_of({0.98, 0.01, 0.01});
    EXPECT_NE(sampled.sample(p, {}), 0);
  }
}

TEST(Sampler, RepetitionPenaltyDemotesRecentTokens) {
  SamplerConfig c = plain(0);
  c.repeat_penalty = 2.0f;
  Sampler s(c);
  std::vector<float> l = {1.0f, 1.5f, 0.9f};
  const std::vector<int32_t> history = {1};
  EXPECT_EQ(s.sample(l, history), 0);  // 1.5 / 2 < 1.0
}

// OpenAI's penalties: token 1 was seen twice, token 2 once, token 0 never.
TEST(Sampler, FrequencyAndPresencePenaltiesSubtractPerOccurrenceAndOnce) {
  const std::vector<int32_t> history = {1, 2, 1};
  SamplerConfig c = plain(0);
  c.frequency_penalty = 0.3f;  // token 1: 2.0 - 2 * 0.3, token 2: 1.6 - 0.3
  std::vector<float> l = {1.35f, 2.0f, 1.6f};
  EXPECT_EQ(Sampler(c).sample(l, history), 1);
  EXPECT_FLOAT_EQ(l[1], 1.4f);
  EXPECT_FLOAT_EQ(l[2], 1.3f);
  EXPECT_FLOAT_EQ(l[0], 1.35f);
  c.frequency_penalty = 0.4f;  // token 1: 1.2, token 2: 1.2, token 0 untouched: 1.35
  l = {1.35f, 2.0f, 1.6f};
  EXPECT_EQ(Sampler(c).sample(l, history), 0);

  c = plain(0);
  c.presence_penalty = 0.5f;  // once per seen token, however often
  l = {1.35f, 2.0f, 1.6f};
  EXPECT_EQ(Sampler(c).sample(l, history), 1);
  EXPECT_FLOAT_EQ(l[1], 1.5f);
  EXPECT_FLOAT_EQ(l[2], 1.1f);
  c.presence_penalty = -1.0f;  // negative: encourages what was seen
  l = {1.35f, 2.0f, 1.6f};
  Sampler(c).sample(l, history);
  EXPECT_FLOAT_EQ(l[2], 2.6f);
  // Only the last repeat_last_n tokens count.
  c = plain(0);
  c.frequency_penalty = 1.0f;
  c.repeat_last_n = 1;
  l = {1.35f, 2.0f, 1.6f};
  Sampler(c).sample(l, history);
  EXPECT_FLOAT_EQ(l[1], 1.0f);
  EXPECT_FLOAT_EQ(l[2], 1.6f);
}

TEST(Sampler, MinPAndTopPDropTheTail) {
  SamplerConfig c = plain(1.0f);
  c.min_p = 0.3f;  // keeps tokens with p >= 0.3 * 0.6
  Sampler s(c);
  std::map<int32_t, int> counts;
  for (int i = 0; i < 2000; ++i) {
    auto l = logits_of({0.6, 0.3, 0.1});
    ++counts[s.sample(l, {})];
  }
  EXPECT_EQ(counts[2], 0);
  EXPECT_GT(counts[0], counts[1]);

  SamplerConfig p = plain(1.0f);
  p.top_p = 0.5f;  // only the 0.6 token is needed to reach 0.5
  Sampler sp(p);
  for (int i = 0; i < 200; ++i) {
    auto l = logits_of({0.6, 0.3, 0.1});
    EXPECT_EQ(sp.sample(l, {}), 0);
  }
}

// Frequencies follow the distribution (seeded, so the test is deterministic; the
// bound is ~5 standard deviations of a 20000-draw binomial).
TEST(Sampler, FrequenciesFollowProbabilities) {
  Sampler s(plain(1.0f));
  std::map<int32_t, int> counts;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    auto l = logits_of({0.5, 0.3, 0.2});
    ++counts[s.sample(l, {})];
  }
  EXPECT_NEAR(counts[0] / double(n), 0.5, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.02);
  EXPECT_NEAR(counts[2] / double(n), 0.2, 0.02);
}

TEST(Sampler, SameSeedSameSequence) {
  auto draw = [](uint64_t seed) {
    SamplerConfig c;
    c.seed = seed;
    Sampler s(c);
    std::vector<int32_t> out;
    for (int i = 0; i < 100; ++i) {
      auto l = logits_of({0.25, 0.25, 0.25, 0.25});
      out.push_back(s.sample(l, out));
    }
    return out;
  };
  EXPECT_EQ(draw(3), draw(3));
  EXPECT_NE(draw(3), draw(4));
}

}  // namespace
}  // namespace qrun
