// Quantization quality, pinned: perplexity and KL divergence of the shipped model on
// its in-domain text, quantized against f32. Thresholds are the values measured when
// the formats were fixed (q8: KLD 0.00096, same top-1 98.4%; q4: KLD 0.114, 81.1%;
// f32 perplexity 6.20) with a margin, so a regression in a kernel, a quantizer or the
// converter policy fails here.
#include <gtest/gtest.h>

#include "common/model_fixture.h"
#include "qrun/model.h"
#include "qrun/error.h"
#include "qrun/perplexity.h"

namespace qrun {
namespace {

class StoriesQuality : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    text_ = test::read_text(test::shared_dir() / "corpus/tinystories_valid_excerpt.txt");
    base_path_ = (dir_ / "stories.kld").string();
    Model base(test::converted_stories(DType::F32).string(), options());
    PerplexityOptions po;
    po.save_kl_base = base_path_;
    base_ppl_ = run_perplexity(base, text_, po, {}).ppl;
  }
  static RuntimeOptions options() {
    RuntimeOptions ro;
    ro.context = 256;
    ro.batch = 256;
    ro.threads = 2;
    return ro;
  }
  static PerplexityResult compare(DType t) {
    Model m(test::converted_stories(t).string(), options());
    PerplexityOptions po;
    po.kl_base = base_path_;
    const auto r = run_perplexity(m, text_, po, {});
    std::printf("%s: ppl %.4f (base %.4f), mean KLD %.6f +/- %.6f, p99 %.5f, same top-1 %.2f%%\n",
                std::string(dtype_name(t)).c_str(), r.ppl, r.ppl_base, r.kld_mean, r.kld_err, r.kld_p99,
                100 * r.top1_agreement);
    return r;
  }
  static inline test::ScratchDir dir_;
  static inline std::string text_, base_path_;
  static inline double base_ppl_ = 0;
};

TEST_F(StoriesQuality, F32PerplexityIsInDomain) {
  // A trained TinyStories model on TinyStories text: single digits (6.20 measured).
  EXPECT_GT(base_ppl_, 4.0);
  EXPECT_LT(base_ppl_, 7.0);
}

TEST_F(StoriesQuality, Q8LosesAlmostNothing) {
  const auto r = compare(DType::Q8);
  EXPECT_NEAR(r.ppl_base, base_ppl_, 1e-3);
  EXPECT_LT(r.kld_mean, 0.0013);
  EXPECT_GT(r.top1_agreement, 0.975);
  EXPECT_LT(r.ppl / r.ppl_base, 1.003);
}

TEST_F(StoriesQuality, Q4StaysWithinItsMeasuredLoss) {
  const auto r = compare(DType::Q4);
  EXPECT_LT(r.kld_mean, 0.135);
  EXPECT_GT(r.top1_agreement, 0.78);
  EXPECT_LT(r.ppl / r.ppl_base, 1.11);
}

TEST(Perplexity, RefusesAMismatchedBaseFile) {
  test::ScratchDir dir;
  RuntimeOptions ro;
  ro.context = 32;
  Model m(test::converted_stories(DType::Q8).string(), ro);
  PerplexityOptions save;
  save.context = 32;
  save.save_kl_base = (dir / "a.kld").string();
  run_perplexity(m, "Once upon a time there was a little girl named Lily. She loved to play outside. "
                    "One day she saw a big red ball in the park and she wanted to play with it.", save, {});
  PerplexityOptions cmp;
  cmp.context = 32;
  cmp.kl_base = save.save_kl_base;
  EXPECT_THROW(run_perplexity(m, "A completely different text that is long enough to fill one window of thirty two "
                                 "tokens, with many words in it, yes many many words indeed here.",
                              cmp, {}),
               Error);
}

}  // namespace
}  // namespace qrun
