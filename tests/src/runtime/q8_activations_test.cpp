// 16-bit activations for Q8 matrices (simd/kernels.h BlockQ16A): what the run plan
// chooses, and that they bring the stories260K q8 model closer to its f32 original in
// one-token steps and in prompt batches alike.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/golden.h"
#include "common/model_fixture.h"
#include "qrun/error.h"
#include "qrun/model.h"
#include "qrun/model_file.h"
#include "qrun/run_plan.h"
#include "simd/kernels.h"

namespace qrun {
namespace {

RuntimeOptions options(int bits) {
  RuntimeOptions ro;
  ro.threads = 1;
  ro.context = 256;
  ro.batch = 64;
  ro.q8_activation_bits = bits;
  return ro;
}

TEST(RunPlan, ChoosesTheActivationBitsOfQ8Matrices) {
  const ModelFile q8(test::converted_stories(DType::Q8).string());
  const RunPlan wide = plan_run(q8, options(16)), narrow = plan_run(q8, options(8)), chosen = plan_run(q8, options(0));
  EXPECT_EQ(wide.q8_prompt_bits, 16);
  EXPECT_EQ(wide.q8_step_bits, 16);
  EXPECT_EQ(narrow.q8_prompt_bits, 8);
  EXPECT_EQ(narrow.q8_step_bits, 8);
  EXPECT_EQ(chosen.q8_prompt_bits, 8);
  EXPECT_EQ(chosen.q8_step_bits, fused_i16_activations() ? 16 : 8);
  // 16-bit buffers for every batch row, over the widest input (the hidden layer here).
  const auto& hp = q8.hparams();
  ASSERT_GE(hp.hidden_dim, hp.dim);
  EXPECT_EQ(wide.scratch_bytes - narrow.scratch_bytes, 64u * q8a_blocks(hp.hidden_dim) * sizeof(BlockQ16A));
  EXPECT_EQ(wide.describe_q8_activations(), "q8 activations 16-bit");

  const ModelFile f32(test::converted_stories(DType::F32).string());
  EXPECT_EQ(plan_run(f32, options(16)).q8_step_bits, 0);
  EXPECT_EQ(plan_run(f32, options(16)).describe_q8_activations(), "");
  EXPECT_THROW(plan_run(q8, options(12)), Error);
  RuntimeOptions negative = options(0);
  negative.threads = -3;
  EXPECT_THROW(plan_run(q8, negative), Error);
  negative = options(0);
  negative.batch = -1;
  EXPECT_THROW(plan_run(q8, negative), Error);
}

// Mean |logit - f32 logit| over a golden case's prompt and continuation, run as one batch
// or one token at a time.
double logit_error(int bits, bool steps, const std::vector<float>& reference, const std::vector<int32_t>& seq) {
  Model m(test::converted_stories(DType::Q8).string(), options(bits));
  const size_t vocab = m.hparams().vocab_size;
  std::vector<float> logits(seq.size() * vocab);
  if (steps) {
    for (size_t i = 0; i < seq.size(); ++i) m.step(seq[i], &logits[i * vocab]);
  } else {
    m.forward(seq, logits.data(), true);
  }
  double err = 0;
  for (size_t i = 0; i < logits.size(); ++i) err += std::fabs(logits[i] - reference[i]);
  return err / static_cast<double>(logits.size());
}

TEST(Q8Activations, SixteenBitsBringLogitsCloserToF32InStepsAndBatches) {
  const auto c = test::load_golden()[2];
  std::vector<int32_t> seq = c.prompt_ids;
  seq.insert(seq.end(), c.greedy_ids.begin(), c.greedy_ids.end());
  Model base(test::converted_stories(DType::F32).string(), options(0));
  std::vector<float> reference(seq.size() * base.hparams().vocab_size);
  base.forward(seq, reference.data(), true);
  for (bool steps : {true, false}) {
    const double e8 = logit_error(8, steps, reference, seq), e16 = logit_error(16, steps, reference, seq);
    std::printf("%s: mean |logit error| 8-bit %.5f, 16-bit %.5f\n", steps ? "steps" : "batch", e8, e16);
    EXPECT_LT(e16, 0.75 * e8) << (steps ? "steps" : "batch");
  }
}

}  // namespace
}  // namespace qrun
