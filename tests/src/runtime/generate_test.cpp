// The generation loop on the real stories260K model: a continuation's text, prefix reuse
// of the KV cache, and context shift against a fresh evaluation of the same tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/golden.h"
#include "common/model_fixture.h"
#include "common/rotated_keys.h"
#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/model.h"
#include "quant/quantize.h"

namespace qrun {
namespace {

SamplerConfig greedy_config() {
  SamplerConfig sc;
  sc.temperature = 0;
  return sc;
}

std::vector<int32_t> run(Model& m, const std::vector<int32_t>& prompt, int n, GenerationStats* stats = nullptr,
                         bool context_shift = true) {
  Sampler s(greedy_config());
  GenerateOptions go;
  go.n_predict = n;
  go.ignore_eos = true;
  go.context_shift = context_shift;
  std::vector<int32_t> out;
  const auto st = generate(m, prompt, s, go, [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  if (stats) *stats = st;
  return out;
}

// What a user sees: the prompt as typed, then the streamed continuation, equals the
// golden text, for prompts whose continuation starts with a space-prefixed piece
// ("The little dog was sad because" + " he") and for those that do not (", there").
TEST(Generate, StreamedContinuationReadsLikeTheGoldenText) {
  Model m = test::stories_model(DType::F32);
  int with_space = 0;
  for (const auto& c : test::load_golden()) {
    m.reset();
    const auto ids = run(m, c.prompt_ids, static_cast<int>(c.greedy_ids.size()));
    ASSERT_EQ(ids, c.greedy_ids) << c.prompt;
    StreamingDecoder dec(m.tokenizer(), /*at_text_start=*/false);
    std::string text;
    for (int32_t id : ids) text += dec.push(id);
    text += dec.flush();
    EXPECT_EQ(text, c.greedy_text) << c.prompt;
    with_space += c.greedy_text[0] == ' ';
  }
  EXPECT_GE(with_space, 1) << "no golden case covers a continuation that starts with a space";
}

// A prompt that extends what the cache holds evaluates only the new tokens, and gives
// the same tokens as a fresh model.
TEST(Generate, PromptThatExtendsTheCacheEvaluatesOnlyNewTokens) {
  const auto cases = test::load_golden();
  Model m = test::stories_model(DType::Q8);
  std::vector<int32_t> prompt = cases[0].prompt_ids;
  GenerationStats st;
  const auto first = run(m, prompt, 10, &st);
  EXPECT_EQ(st.reused_tokens, 0);
  EXPECT_EQ(st.prompt_tokens, static_cast<int>(prompt.size()));
  prompt.insert(prompt.end(), first.begin(), first.end());
  const size_t cached = m.tokens().size();
  ASSERT_EQ(cached, prompt.size() - 1) << "the last sampled token is not in the cache yet";
  const std::vector<int32_t> more = {cases[1].prompt_ids.begin() + 1, cases[1].prompt_ids.end()};
  prompt.insert(prompt.end(), more.begin(), more.end());
  const auto second = run(m, prompt, 20, &st);
  EXPECT_EQ(st.reused_tokens, static_cast<int>(cached));
  EXPECT_EQ(st.prompt_tokens, static_cast<int>(prompt.size() - cached));
  Model fresh = test::stories_model(DType::Q8);
  EXPECT_EQ(second, run(fresh, prompt, 20));
  // The same prompt again: all but its last token come from the cache.
  const auto again = run(m, prompt, 20, &st);
  EXPECT_EQ(st.prompt_tokens, 1);
  EXPECT_EQ(again, second);
}

// A prompt's logits do not depend on how it reaches the model: whole, after a cached
// prefix (its last token alone, as generate() runs it), or one token per batch. On CPUs
// whose q8 one-token steps take 16-bit activations (AVX-512 VNNI) the single-token
// paths once took them too, so a cached prompt sampled differently under the same seed.
TEST(Generate, PromptLogitsDoNotDependOnCachingOrBatching) {
  const auto c = test::load_golden()[3];
  const std::span<const int32_t> prompt(c.prompt_ids);
  Model whole = test::stories_model(DType::Q8);
  const size_t vocab = whole.hparams().vocab_size;
  std::vector<float> expected(vocab), got(vocab);
  whole.forward(prompt, expected.data());

  Model cached = test::stories_model(DType::Q8);
  cached.forward(prompt.first(prompt.size() - 1), got.data());
  cached.forward(prompt.last(1), got.data());
  for (size_t i = 0; i < vocab; ++i) ASSERT_EQ(got[i], expected[i]) << "cached prefix, logit " << i;

  RuntimeOptions ro;
  ro.threads = 1;
  ro.batch = 1;
  Model single(test::converted_stories(DType::Q8).string(), ro);
  single.forward(prompt, got.data());
  for (size_t i = 0; i < vocab; ++i) ASSERT_EQ(got[i], expected[i]) << "batches of one, logit " << i;

  // What a seeded client sees: the same sampled text with and without the cache.
  SamplerConfig sc;
  sc.temperature = 1.5f, sc.top_k = 0, sc.top_p = 1, sc.min_p = 0, sc.seed = 7;
  GenerateOptions go;
  go.n_predict = 40;
  go.ignore_eos = true;
  auto sample = [&](Model& m) {
    Sampler s(sc);
    std::vector<int32_t> out;
    generate(m, prompt, s, go, [&](int32_t id) { return out.push_back(id), true; });
    return out;
  };
  Model m = test::stories_model(DType::Q8);
  const auto fresh = sample(m);
  m.truncate(static_cast<int>(prompt.size()));  // the prompt cached, as qserve keeps it
  EXPECT_EQ(sample(m), fresh);
}

// After a shift, every key and value of the kept tokens sits `drop` slots lower, and
// the keys are rotated to their new positions: in layer 0, where a key depends only on
// its token and position, they match a fresh evaluation of the kept tokens.
TEST(Generate, ContextShiftMovesTheCacheAndRotatesKeysToTheirNewPositions) {
  const auto c = test::load_golden()[2];
  std::vector<int32_t> seq = c.prompt_ids;
  seq.insert(seq.end(), c.greedy_ids.begin(), c.greedy_ids.begin() + 40);
  const int keep = 4, drop = 17, n = static_cast<int>(seq.size());
  Model shifted = test::stories_model(DType::F32, 64);
  std::vector<float> logits(shifted.hparams().vocab_size);
  shifted.forward(seq, logits.data());
  const KvCache& kv = shifted.kv_cache();
  const int64_t value_bytes = kv.value_bytes();
  const int layers = static_cast<int>(shifted.hparams().n_layers);
  std::vector<std::vector<uint8_t>> values_before;
  for (int l = 0; l < layers; ++l)
    for (int p = keep + drop; p < n; ++p) values_before.emplace_back(kv.value(l, p), kv.value(l, p) + value_bytes);
  shifted.shift_context(keep, drop);
  ASSERT_EQ(shifted.position(), n - drop);
  std::vector<int32_t> kept(seq.begin(), seq.begin() + keep);
  kept.insert(kept.end(), seq.begin() + keep + drop, seq.end());
  ASSERT_EQ(std::vector<int32_t>(shifted.tokens().begin(), shifted.tokens().end()), kept);

  size_t k = 0;
  for (int l = 0; l < layers; ++l)
    for (int p = keep; p < n - drop; ++p, ++k)
      ASSERT_TRUE(std::equal(kv.value(l, p), kv.value(l, p) + value_bytes, values_before[k].begin())) << l << " " << p;
  Model fresh = test::stories_model(DType::F32, 64);
  fresh.forward(kept, logits.data());
  const float worst = test::max_key_error_in_f16_steps(kv, fresh.kv_cache(), 0, n - drop,
                                                      static_cast<int>(shifted.hparams().head_dim));
  EXPECT_LE(worst, 4.0f) << "in f16 steps of the pair's length";
  // The shifted cache keeps generating.
  Sampler s(greedy_config());
  GenerateOptions go;
  go.n_predict = 5;
  std::vector<int32_t> more(shifted.tokens().begin(), shifted.tokens().end());
  GenerationStats st = generate(shifted, more, s, go, [](int32_t) { return true; });
  EXPECT_EQ(st.prompt_tokens, 1);
}

// A full context: shifted (generation goes on) by default, a clear stop without shifts.
TEST(Generate, FullContextShiftsOrStops) {
  const auto c = test::load_golden()[0];
  Model m = test::stories_model(DType::Q8, 16);
  GenerationStats st;
  const auto shifted = run(m, c.prompt_ids, 60, &st);
  EXPECT_EQ(shifted.size(), 60u);
  EXPECT_GT(st.context_shifts, 0);
  EXPECT_EQ(st.stop, StopReason::TokenLimit);
  m.reset();
  const auto stopped = run(m, c.prompt_ids, 60, &st, /*context_shift=*/false);
  EXPECT_EQ(st.stop, StopReason::ContextFull);
  EXPECT_EQ(stopped.size(), 16 - c.prompt_ids.size() + 1);
  EXPECT_EQ(st.context_shifts, 0);
  EXPECT_TRUE(std::equal(stopped.begin(), stopped.end(), shifted.begin())) << "the same tokens until the context filled";
}

TEST(Generate, MakeRoomRefusesWhatCannotFit) {
  const auto c = test::load_golden()[0];
  Model m = test::stories_model(DType::Q8, 16);
  std::vector<float> logits(m.hparams().vocab_size);
  m.forward(c.prompt_ids, logits.data());
  EXPECT_THROW(make_room(m, 16, 0), Error);  // BOS stays: 15 free at most
  EXPECT_GE(make_room(m, 15, 0), 1);
  EXPECT_EQ(m.position(), 1);
  EXPECT_EQ(m.tokens()[0], m.tokenizer().bos_id());
}

TEST(Generate, PromptLongerThanTheContextIsAnError) {
  Model m = test::stories_model(DType::Q8, 8);
  EXPECT_THROW(run(m, std::vector<int32_t>(9, 1), 1), Error);
}

}  // namespace
}  // namespace qrun
