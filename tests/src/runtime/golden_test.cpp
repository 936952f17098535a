// End to end against ../shared/golden: the whole pipeline (convert, tokenize, forward,
// greedy sampling) must reproduce an independent float64 implementation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/greedy.h"
#include "common/golden.h"
#include "common/model_fixture.h"
#include "qrun/generate.h"
#include "qrun/error.h"
#include "qrun/model.h"

namespace qrun {
namespace {

using test::greedy;

// Teacher-forced logits for prompt + golden continuation, one row per position.
std::vector<float> forced_logits(Model& m, const test::GoldenCase& c) {
  std::vector<int32_t> seq = c.prompt_ids;
  seq.insert(seq.end(), c.greedy_ids.begin(), c.greedy_ids.end() - 1);
  m.reset();
  std::vector<float> logits(seq.size() * m.hparams().vocab_size);
  m.forward(seq, logits.data(), true);
  return logits;
}

struct Agreement {
  double top1 = 0;        // fraction of positions whose argmax is the golden top-1
  float max_abs_err = 0;  // over the golden top-5 logits
};

Agreement agreement(Model& m, const test::GoldenCase& c) {
  const auto logits = forced_logits(m, c);
  const size_t vocab = m.hparams().vocab_size, n = logits.size() / vocab;
  Agreement a;
  for (size_t p = 0; p < n; ++p) {
    const float* row = &logits[p * vocab];
    const auto best = std::max_element(row, row + vocab) - row;
    a.top1 += best == c.top_ids[p][0];
    for (size_t k = 0; k < 5; ++k)
      a.max_abs_err = std::max(a.max_abs_err, std::abs(row[c.top_ids[p][k]] - c.top_logits[p][k]));
  }
  a.top1 /= static_cast<double>(n);
  return a;
}

class GoldenStories : public ::testing::Test {
 protected:
  static Model load(DType t, int threads = 2) {
    RuntimeOptions ro;
    ro.threads = threads;
    return Model(test::converted_stories(t).string(), ro);
  }
  std::vector<test::GoldenCase> cases_ = test::load_golden();
};

TEST_F(GoldenStories, TokenizerReproducesPromptIds) {
  Model m = load(DType::F32);
  ASSERT_EQ(cases_.size(), 5u);
  for (const auto& c : cases_) EXPECT_EQ(m.tokenizer().encode(c.prompt, true, false), c.prompt_ids) << c.prompt;
}

// F32 weights: the full 100-token greedy continuation matches, and every golden
// top-5 logit is within 0.03 (logits reach ~20; the KV cache is f16, which alone
// accounts for ~1e-3 relative, plus f32 accumulation vs float64).
TEST_F(GoldenStories, F32GreedyAndLogitsMatch) {
  Model m = load(DType::F32);
  for (const auto& c : cases_) {
    EXPECT_EQ(greedy(m, c.prompt_ids, 100), c.greedy_ids) << c.prompt;
    const Agreement a = agreement(m, c);
    EXPECT_EQ(a.top1, 1.0) << c.prompt;
    EXPECT_LT(a.max_abs_err, 0.03f) << c.prompt;
  }
}

// F16 weights: greedy continuation still matches; logits within 0.05.
TEST_F(GoldenStories, F16GreedyMatches) {
  Model m = load(DType::F16);
  for (const auto& c : cases_) {
    EXPECT_EQ(greedy(m, c.prompt_ids, 100), c.greedy_ids) << c.prompt;
    EXPECT_LT(agreement(m, c).max_abs_err, 0.05f) << c.prompt;
  }
}

// Q8: the first 32 tokens match for most prompts, and teacher-forced top-1 agrees at
// >= 95% of all positions.
TEST_F(GoldenStories, Q8MostlyMatches) {
  Model m = load(DType::Q8);
  int prefix_matches = 0;
  double top1 = 0;
  for (const auto& c : cases_) {
    const auto got = greedy(m, c.prompt_ids, 32);
    prefix_matches += std::equal(got.begin(), got.end(), c.greedy_ids.begin());
    top1 += agreement(m, c).top1;
  }
  top1 /= static_cast<double>(cases_.size());
  std::printf("Q8: %d of %zu 32-token prefixes match, teacher-forced top-1 %.1f%%\n", prefix_matches, cases_.size(),
              100 * top1);
  EXPECT_GE(prefix_matches, 4) << "Q8 32-token prefixes matching golden";
  EXPECT_GE(top1, 0.95);
}

// Q4 is reported; the bound only guards against a broken 4-bit path.
TEST_F(GoldenStories, Q4Reported) {
  Model m = load(DType::Q4);
  double sum = 0;
  for (const auto& c : cases_) sum += agreement(m, c).top1;
  const double mean = sum / static_cast<double>(cases_.size());
  std::printf("Q4 teacher-forced top-1 agreement with golden: %.1f%%\n", 100 * mean);
  EXPECT_GE(mean, 0.80);
}

TEST_F(GoldenStories, OneThreadAndTwoThreadsGiveTheSameGreedyOutput) {
  for (DType t : {DType::F32, DType::Q4}) {
    Model one = load(t, 1), two = load(t, 2);
    const auto& c = cases_[1];
    EXPECT_EQ(greedy(one, c.prompt_ids, 64), greedy(two, c.prompt_ids, 64)) << dtype_name(t);
  }
}

TEST_F(GoldenStories, BatchedPromptEqualsTokenByToken) {
  RuntimeOptions ro;
  ro.threads = 1;
  ro.batch = 1;
  Model single(test::converted_stories(DType::F32).string(), ro);
  Model batched = load(DType::F32);
  const auto& c = cases_[2];
  const size_t vocab = batched.hparams().vocab_size;
  std::vector<float> a(vocab), b(vocab);
  single.forward(c.prompt_ids, a.data());
  batched.forward(c.prompt_ids, b.data());
  // Batches of F32 weights go through sgemm, single tokens through the Highway matvec:
  // two summation orders, and a last-bit difference in a key or value can round to
  // another f16 in the KV cache. Measured worst on NEON: 7.6e-4 (x86: under 1e-4).
  for (size_t i = 0; i < vocab; ++i) EXPECT_NEAR(a[i], b[i], 2e-3f) << i;
}

TEST_F(GoldenStories, SameSeedSameSample) {
  Model m = load(DType::Q8);
  auto run = [&](uint64_t seed) {
    m.reset();
    SamplerConfig sc;
    sc.temperature = 1.0f;
    sc.seed = seed;
    Sampler s(sc);
    std::vector<int32_t> out;
    GenerateOptions go;
    go.n_predict = 48;
    go.ignore_eos = true;
    generate(m, cases_[0].prompt_ids, s, go, [&](int32_t id) {
      out.push_back(id);
      return true;
    });
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST_F(GoldenStories, ContextOverflowIsAnError) {
  RuntimeOptions ro;
  ro.context = 8;
  Model m(test::converted_stories(DType::Q8).string(), ro);
  std::vector<int32_t> prompt(9, 1);
  std::vector<float> logits(m.hparams().vocab_size);
  EXPECT_THROW(m.forward(prompt, logits.data()), Error);
}

}  // namespace
}  // namespace qrun
