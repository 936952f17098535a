// Mixture-of-experts layers: the router against a plain softmax-and-sort, and a prompt
// batch (each expert once over the tokens that chose it) against one-token steps (the
// chosen experts side by side), on the synthetic Qwen3-MoE, Mixtral, GraniteMoe and Qwen2-MoE reference
// checkpoints (tests/reference/hf_reference.py, which checks them against float64 NumPy
// of the Hugging Face code: tests/convert/architectures_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common/hf_reference.h"
#include "common/test_paths.h"
#include "qrun/model.h"
#include "src/runtime/expert_router.h"

namespace qrun {
namespace {

TEST(RouteToken, MatchesSoftmaxThenStableSort) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (const int n : {1, 2, 8, 60, 128}) {
    for (const int k : {1, 2, 3, 8}) {
      if (k > n) continue;
      for (const bool renormalize : {false, true}) {
        std::vector<float> logits(static_cast<size_t>(n));
        for (float& v : logits) v = std::round(normal(rng) * 4) / 4;  // quarter steps: ties happen
        std::vector<double> p(logits.begin(), logits.end());
        const double top = *std::max_element(p.begin(), p.end());
        for (double& v : p) v = std::exp(v - top);
        const double sum = std::accumulate(p.begin(), p.end(), 0.0);
        std::vector<int> order(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
        double picked = 0;
        for (int j = 0; j < k; ++j) picked += p[size_t(order[size_t(j)])];

        std::vector<int32_t> chosen(static_cast<size_t>(k));
        std::vector<float> weights(static_cast<size_t>(k));
        route_token(logits.data(), n, k, renormalize, chosen.data(), weights.data());
        for (int j = 0; j < k; ++j) {
          EXPECT_EQ(chosen[size_t(j)], order[size_t(j)]) << "n " << n << " k " << k << " slot " << j;
          const double want = p[size_t(order[size_t(j)])] / (renormalize ? picked : sum);
          EXPECT_NEAR(weights[size_t(j)], want, 1e-6) << "n " << n << " k " << k << " slot " << j;
        }
      }
    }
  }
}

struct ExpertsCase {
  const char* arch;
  DType type;
  double tol;  // max |batched - stepped logit|, relative to the largest logit
};

class Experts : public ::testing::TestWithParam<ExpertsCase> {};

// Logits of a prompt in batches of 5 (experts over gathered tokens) against those of the
// same tokens stepped one at a time (k experts in one section), on two threads. At f32
// they differ by float rounding only. Quantized, the float router (a matrix product in
// a batch, a matrix-vector one in steps) may differ in the last bit, and such a bit can
// round one int8 activation of the next layer the other way: a logit then moves by up to
// about 1% (the same token's, seen on mixtral at q4), never more.
TEST_P(Experts, PromptBatchesComputeWhatStepsCompute) {
  const ExpertsCase c = GetParam();
  std::string why;
  test::ScratchDir out;
  const std::string path = test::converted_reference(c.arch, c.type, out.path(), &why);
  if (path.empty()) GTEST_SKIP() << why;
  std::vector<int32_t> seq = test::load_reference(test::reference_checkpoint(c.arch, &why)).tokens;
  RuntimeOptions ro;
  ro.threads = 2;
  ro.context = 64;
  ro.batch = 5;
  Model batched(path, ro), stepped(path, ro);
  ASSERT_GT(batched.hparams().n_experts, 0u);
  const size_t vocab = batched.hparams().vocab_size;
  std::vector<float> all(seq.size() * vocab), one(vocab);
  batched.forward(seq, all.data(), true);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < seq.size(); ++i) {
    stepped.step(seq[i], one.data());
    const float* row = &all[i * vocab];
    for (size_t v = 0; v < vocab; ++v) {
      worst = std::max(worst, double(std::abs(one[v] - row[v])));
      scale = std::max(scale, double(std::abs(one[v])));
    }
  }
  EXPECT_LT(worst, c.tol * scale) << "largest logit " << scale;
}

// The default prompt batch grows with the experts a token skips: each expert averages
// half the dense batch's tokens (64 quantized, 256 float), in multiples of 16, at most 512.
TEST(Experts, DefaultPromptBatchFeedsEachExpertHalfADenseBatch) {
  std::string why;
  const std::pair<const char*, DType> cases[] = {{"qwen3moe", DType::Q4}, {"mixtral", DType::Q4}, {"qwen3moe", DType::F32}};
  const int want[] = {80, 96, 336};  // 64 * 8 / (2 * 3), 64 * 6 / (2 * 2), 256 * 8 / (2 * 3), rounded down to 16s
  for (size_t i = 0; i < std::size(cases); ++i) {
    test::ScratchDir out;
    const std::string path = test::converted_reference(cases[i].first, cases[i].second, out.path(), &why);
    if (path.empty()) GTEST_SKIP() << why;
    RuntimeOptions ro;
    ro.threads = 1;
    ro.context = 64;
    EXPECT_EQ(Model(path, ro).plan().batch, want[i]) << cases[i].first;
    ro.batch = 7;
    EXPECT_EQ(Model(path, ro).plan().batch, 7) << "asked for";
  }
}

INSTANTIATE_TEST_SUITE_P(Moe, Experts,
                         ::testing::Values(ExpertsCase{"qwen3moe", DType::F32, 1e-5}, ExpertsCase{"mixtral", DType::F32, 1e-5},
                                           ExpertsCase{"qwen3moe", DType::Q4, 2e-2}, ExpertsCase{"mixtral", DType::Q4, 2e-2},
                                           ExpertsCase{"granitemoe", DType::F32, 1e-5},
                                           ExpertsCase{"granitemoe", DType::Q4, 2e-2},
                                           ExpertsCase{"qwen2moe", DType::F32, 1e-5},
                                           ExpertsCase{"qwen2moe", DType::Q4, 2e-2},
                                           ExpertsCase{"gpt-oss", DType::F32, 1e-5},
                                           ExpertsCase{"gpt-oss", DType::Q4, 2e-2}));

}  // namespace
}  // namespace qrun
