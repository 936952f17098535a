// Sliding-window layers that keep a ring of window + batch positions (RunPlan::kv_ring)
// must compute exactly what a cache of the whole context computes: in prompts split
// into batches, in one-token steps, after a truncation (prefix reuse) and after a
// context shift. Model: the synthetic Gemma 3 reference checkpoint (window 5, layer 5
// global), converted at f32.
#include <gtest/gtest.h>

#include "common/hf_reference.h"
#include "common/test_paths.h"
#include "qrun/model.h"

namespace qrun {
namespace {

class KvRing : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    path_ = test::converted_reference("gemma3", DType::F32, out_.path(), &why);
    if (path_.empty()) GTEST_SKIP() << why;
    const test::Reference ref = test::load_reference(test::reference_checkpoint("gemma3", &why));
    seq_ = ref.tokens;
    seq_.insert(seq_.end(), ref.greedy.begin(), ref.greedy.end());
  }
  Model load(bool swa_full) const {
    RuntimeOptions ro;
    ro.threads = 2;
    ro.context = 64;
    ro.batch = 3;
    ro.swa_full = swa_full;
    return Model(path_, ro);
  }
  std::vector<float> run(Model& m, std::span<const int32_t> tokens) const {
    std::vector<float> logits(tokens.size() * m.hparams().vocab_size);
    m.forward(tokens, logits.data(), true);
    return logits;
  }

  test::ScratchDir out_;
  std::string path_;
  std::vector<int32_t> seq_;  // 40 tokens
};

TEST_F(KvRing, ComputesWhatTheWholeContextComputes) {
  Model ring = load(false), full = load(true);
  ASSERT_EQ(ring.plan().ring_positions(), 5 + 3);
  ASSERT_EQ(full.plan().ring_positions(), 0);
  EXPECT_EQ(ring.plan().kv_ring, (std::vector<int>{8, 8, 8, 8, 8, 0}));
  EXPECT_LT(ring.plan().kv_cache_bytes, full.plan().kv_cache_bytes);
  EXPECT_EQ(ring.kv_cache().bytes(), ring.plan().kv_cache_bytes);

  // A prompt in batches of 3, then one-token steps: bit for bit.
  const std::span<const int32_t> all(seq_);
  EXPECT_EQ(run(ring, all.first(30)), run(full, all.first(30)));
  const int vocab = static_cast<int>(ring.hparams().vocab_size);
  std::vector<float> a(vocab), b(vocab);
  for (int i = 30; i < 36; ++i) {
    ring.step(seq_[size_t(i)], a.data());
    full.step(seq_[size_t(i)], b.data());
    ASSERT_EQ(a, b) << "step at " << i;
  }

  // Truncating by less than a batch keeps the ring's window: the prefix is reused.
  ring.truncate(34);
  full.truncate(34);
  EXPECT_EQ(ring.position(), 34);
  EXPECT_EQ(run(ring, all.subspan(34, 4)), run(full, all.subspan(34, 4)));

  // Further back, the ring no longer holds the window before it: the cache starts over
  // and the tokens are evaluated again, to the same logits.
  ring.truncate(20);
  full.truncate(20);
  EXPECT_EQ(ring.position(), 0);
  EXPECT_EQ(full.position(), 20);
  run(ring, all.first(20));
  const auto again = run(ring, all.subspan(20, 10)), kept = run(full, all.subspan(20, 10));
  for (size_t i = 0; i < again.size(); ++i) ASSERT_NEAR(again[i], kept[i], 1e-4f) << i;

  // A context shift turns the moved keys back the same way in both.
  ring.shift_context(2, 9);
  full.shift_context(2, 9);
  ASSERT_EQ(ring.position(), 21);
  ASSERT_EQ(std::vector<int32_t>(ring.tokens().begin(), ring.tokens().end()),
            std::vector<int32_t>(full.tokens().begin(), full.tokens().end()));
  for (int i = 30; i < 34; ++i) {
    ring.step(seq_[size_t(i)], a.data());
    full.step(seq_[size_t(i)], b.data());
    ASSERT_EQ(a, b) << "step after the shift at " << i;
  }
}

// A shift that keeps tokens the ring has dropped (the new window reaches back to them)
// recomputes the kept tokens: the same cache as evaluating them afresh.
TEST_F(KvRing, ShiftReachingBackToDroppedTokensRecomputes) {
  Model ring = load(false), fresh = load(false);
  const std::span<const int32_t> all(seq_);
  run(ring, all.first(30));
  ring.shift_context(4, 24);  // 6 left: the window reaches back to the 4 kept tokens
  std::vector<int32_t> kept(seq_.begin(), seq_.begin() + 4);
  kept.insert(kept.end(), seq_.begin() + 28, seq_.begin() + 30);
  ASSERT_EQ(std::vector<int32_t>(ring.tokens().begin(), ring.tokens().end()), kept);
  run(fresh, kept);
  EXPECT_EQ(run(ring, all.subspan(30, 3)), run(fresh, all.subspan(30, 3)));
}

}  // namespace
}  // namespace qrun
