// Speculative decoding on the real stories260K model: with any draft the output is the
// model's own (greedy and sampled, with context shifts), the cache holds what generation
// without a draft leaves, and a draft that is the model itself has every guess accepted.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "common/golden.h"
#include "common/hf_reference.h"
#include "common/model_fixture.h"
#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/model.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {
namespace {

struct Generation {
  std::vector<int32_t> tokens;
  GenerationStats stats;
};

Generation run(Model& m, const std::vector<int32_t>& prompt, int n, float temperature, DraftOptions draft = {}) {
  SamplerConfig sc;
  sc.temperature = temperature;
  sc.seed = 7;
  Sampler s(sc);
  GenerateOptions go;
  go.n_predict = n;
  go.ignore_eos = true;
  go.draft = draft;
  Generation r;
  r.stats = generate(m, prompt, s, go, [&](int32_t id) {
    r.tokens.push_back(id);
    return true;
  });
  return r;
}

// The model's batches of guesses give the logits its steps give (q8's at the steps'
// 16-bit activations where the CPU has them), so the output with a draft is the output
// without, token for token: q4 and q8 models, drafts of another precision (q8 or q4, f32),
// many guesses or one, greedy and sampled.
TEST(Speculative, OutputIsTheModelsOwn) {
  Model q4 = test::stories_model(DType::Q4), q8 = test::stories_model(DType::Q8), f32 = test::stories_model(DType::F32);
  for (const auto& [target_ptr, other] : {std::pair{&q4, &q8}, std::pair{&q8, &q4}})
  for (const auto& c : test::load_golden()) {
    Model& target = *target_ptr;
    for (const float temperature : {0.0f, 0.9f}) {
      target.reset();
      const Generation plain = run(target, c.prompt_ids, 120, temperature);
      for (Model* draft : {other, &f32}) {
        for (const DraftOptions d : {DraftOptions{draft, 16, 0.0f}, DraftOptions{draft, 1, 0.0f}, DraftOptions{draft, 8, 0.75f}}) {
          target.reset();
          draft->reset();
          const Generation spec = run(target, c.prompt_ids, 120, temperature, d);
          ASSERT_EQ(spec.tokens, plain.tokens) << c.prompt << " temperature " << temperature << " max " << d.max;
          EXPECT_GT(spec.stats.drafted_tokens, 0);
          EXPECT_LE(spec.stats.accepted_tokens, spec.stats.drafted_tokens);
          EXPECT_EQ(spec.stats.eval_tokens, plain.stats.eval_tokens);
          // The cache holds the prompt and every output token but the last, as without a draft.
          std::vector<int32_t> held(c.prompt_ids);
          held.insert(held.end(), plain.tokens.begin(), plain.tokens.end() - 1);
          EXPECT_EQ(std::vector<int32_t>(target.tokens().begin(), target.tokens().end()), held);
        }
      }
    }
  }
}

// The model as its own draft guesses what it then samples greedily: every guess is
// accepted, and the model makes one pass per batch of 4 (the kernels' tile: 3 guesses
// and the sampled token), fewer only for the last tokens asked for.
TEST(Speculative, TheModelAsItsOwnDraftHasEveryGuessAccepted) {
  Model target = test::stories_model(DType::Q4), same = test::stories_model(DType::Q4);
  const auto c = test::load_golden().front();
  const Generation spec = run(target, c.prompt_ids, 100, 0.0f, {&same, 16, 0.0f});
  EXPECT_EQ(spec.stats.accepted_tokens, spec.stats.drafted_tokens);
  // 15 guesses a pass: 99 tokens after the prompt's in passes of 16, 16, 16, 16, 16, 16, 2, 1.
  EXPECT_EQ(spec.stats.eval_tokens - spec.stats.accepted_tokens, 8);
}

// A context of 64 fills and shifts several times in 200 tokens: with a draft the shifts
// come at the same tokens and the output is the same.
TEST(Speculative, ContextShiftsGiveTheSameOutput) {
  Model target = test::stories_model(DType::Q4, 64), draft = test::stories_model(DType::Q8, 64);
  const auto c = test::load_golden().front();
  const Generation plain = run(target, c.prompt_ids, 200, 0.0f);
  ASSERT_GT(plain.stats.context_shifts, 2);
  target.reset();
  const Generation spec = run(target, c.prompt_ids, 200, 0.0f, {&draft, 16, 0.0f});
  EXPECT_EQ(spec.tokens, plain.tokens);
  EXPECT_EQ(spec.stats.context_shifts, plain.stats.context_shifts);
}

// Sliding-window layers that keep a ring of window + batch positions: guesses the model
// refuses are dropped from the cache by truncation, which for more than a batch's worth
// leaves the ring without the window; the kept tokens then run again. The same output.
// Synthetic Gemma 3 (window 5), f32 on qrun's kernels (batches as steps), batches of 3,
// its q4 as the draft.
TEST(Speculative, SlidingWindowRingsGiveTheSameOutput) {
  test::ScratchDir f32_dir, q4_dir;
  std::string why;
  const std::string f32 = test::converted_reference("gemma3", DType::F32, f32_dir.path(), &why);
  if (f32.empty()) GTEST_SKIP() << why;
  const std::string q4 = test::converted_reference("gemma3", DType::Q4, q4_dir.path(), &why);
  RuntimeOptions ro;
  ro.threads = 1;
  ro.context = 64;
  ro.batch = 3;
  ro.blas = false;
  Model target(f32, ro), draft(q4, ro);
  ASSERT_EQ(target.plan().ring_positions(), 5 + 3);
  const std::vector<int32_t> prompt = test::load_reference(test::reference_checkpoint("gemma3", &why)).tokens;
  const int n = 60 - static_cast<int>(prompt.size());
  int dropped = 0;
  for (const float temperature : {0.0f, 0.9f}) {
    target.reset();
    const Generation plain = run(target, prompt, n, temperature);
    target.reset();
    const Generation spec = run(target, prompt, n, temperature, {&draft, 8, 0.0f});
    EXPECT_EQ(spec.tokens, plain.tokens) << "temperature " << temperature;
    dropped += spec.stats.drafted_tokens - spec.stats.accepted_tokens;
  }
  EXPECT_GT(dropped, 0);
}

// A draft's guesses are token ids: another vocabulary (one piece differs) is refused,
// naming the draft's file.
TEST(Speculative, ADraftOfAnotherVocabularyIsRefused) {
  const Tokenizer stories(load_hf_tokenizer(test::stories_dir()));
  auto data = std::make_shared<TokenizerData>(*load_hf_tokenizer(test::stories_dir()));
  data->pieces[300] = "\xe2\x96\x81qrun";
  const Tokenizer other(data);
  EXPECT_NO_THROW(check_draft_vocabulary(stories, stories, "same.q4"));
  try {
    check_draft_vocabulary(stories, other, "other.q4");
    FAIL() << "a draft of another vocabulary was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("other.q4"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qrun
