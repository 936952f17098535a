// Every architecture against tests/reference/hf_reference.py, a float64 NumPy forward
// pass written from the Hugging Face modelling code, on tiny synthetic checkpoints with
// the real models' tensor names and config fields: logits at every position of a token
// sequence and 16 greedy tokens, converted at f32 and at q8.
#include <gtest/gtest.h>

#include <cmath>
#include "common/hf_reference.h"
#include "common/rotated_keys.h"
#include "common/test_paths.h"
#include "convert/converter.h"
#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/model.h"
#include "qrun/model_layout.h"

namespace qrun {
namespace {

using test::load_reference;
using test::Reference;

struct ArchCase {
  const char* arch;
  double f32_tol;  // max |logit - reference| at f32, relative to the largest logit
  int context = 128;
};

class Architectures : public ::testing::TestWithParam<ArchCase> {};

TEST_P(Architectures, MatchesFloat64ReferenceAtF32AndQ8) {
  const ArchCase c = GetParam();
  std::string why;
  const std::string dir = test::reference_checkpoint(c.arch, &why);
  if (dir.empty()) GTEST_SKIP() << why;
  const Reference ref = load_reference(dir);
  for (const DType type : {DType::F32, DType::Q8}) {
    test::ScratchDir out;
    RuntimeOptions ro;
    ro.threads = 1;
    ro.context = c.context;
    Model m(test::converted_reference(c.arch, type, out.path(), &why), ro);
    const size_t vocab = m.hparams().vocab_size;
    std::vector<float> logits(ref.tokens.size() * vocab);
    m.forward(ref.tokens, logits.data(), true);
    double worst = 0, scale = 0;  // max |logit - reference|, max |reference logit|
    int same_top1 = 0;
    for (size_t p = 0; p < ref.tokens.size(); ++p) {
      const float* row = &logits[p * vocab];
      size_t best = 0, ref_best = 0;
      for (size_t i = 0; i < vocab; ++i) {
        worst = std::max(worst, std::abs(row[i] - ref.logits[p][i]));
        scale = std::max(scale, std::abs(ref.logits[p][i]));
        if (row[i] > row[best]) best = i;
        if (ref.logits[p][i] > ref.logits[p][ref_best]) ref_best = i;
      }
      same_top1 += best == ref_best;
    }
    m.reset();
    SamplerConfig sc;
    sc.temperature = 0;
    Sampler s(sc);
    GenerateOptions go;
    go.n_predict = static_cast<int>(ref.greedy.size());
    go.ignore_eos = true;
    std::vector<int32_t> greedy;
    generate(m, ref.tokens, s, go, [&](int32_t id) {
      greedy.push_back(id);
      return true;
    });
    if (type == DType::F32) {
      EXPECT_LT(worst, c.f32_tol * scale) << c.arch << " f32";
      EXPECT_EQ(greedy, ref.greedy) << c.arch << " f32";
    } else {
      // q8 weights and int8 activations: logits move by a few hundredths, the argmax rarely.
      EXPECT_LT(worst, 0.05 * scale) << c.arch << " q8";
      EXPECT_GE(same_top1, static_cast<int>(ref.tokens.size()) - 2) << c.arch << " q8";
      // The first 4 greedy tokens agree, up to a step the reference itself nearly tied
      // (its top two within twice q8's logit error: random weights make such steps).
      int agree = 0, clear = 0;
      while (agree < static_cast<int>(greedy.size()) && greedy[agree] == ref.greedy[agree]) ++agree;
      while (clear < static_cast<int>(ref.margins.size()) && ref.margins[clear] > 2 * worst) ++clear;
      EXPECT_GE(agree, std::min(4, clear)) << c.arch << " q8 greedy";
    }
    std::printf("[ %s %s ] max |logit diff| %.2e of logits up to %.1f, same top-1 %d/%zu\n", c.arch,
                std::string(dtype_name(type)).c_str(), worst, scale, same_top1, ref.tokens.size());
  }
}

// The context-shift tests run in a context of 64 on one thread.
RuntimeOptions small_run() {
  RuntimeOptions ro;
  ro.threads = 1;
  ro.context = 64;
  return ro;
}

// Gemma 3's sliding layers turn keys with their own RoPE base: a context shift must
// turn them back with it. Layer 0 (sliding) keys depend only on token and position, so
// after the shift they match a fresh evaluation of the kept tokens.
TEST(Architectures, Gemma3ContextShiftTurnsSlidingLayerKeysWithTheirOwnBase) {
  std::string why;
  test::ScratchDir out;
  const std::string path = test::converted_reference("gemma3", DType::F32, out.path(), &why);
  if (path.empty()) GTEST_SKIP() << why;
  const Reference ref = load_reference(test::reference_checkpoint("gemma3", &why));
  std::vector<int32_t> seq = ref.tokens;
  seq.insert(seq.end(), ref.greedy.begin(), ref.greedy.end());
  const int keep = 3, drop = 11, n = static_cast<int>(seq.size());
  Model shifted(path, small_run()), fresh(path, small_run());
  ASSERT_TRUE(layer_is_sliding(shifted.hparams(), 0));
  shifted.forward(seq, nullptr);
  shifted.shift_context(keep, drop);
  std::vector<int32_t> kept(seq.begin(), seq.begin() + keep);
  kept.insert(kept.end(), seq.begin() + keep + drop, seq.end());
  fresh.forward(kept, nullptr);
  EXPECT_LE(test::max_key_error_in_f16_steps(shifted.kv_cache(), fresh.kv_cache(), 0, n - drop,
                                             static_cast<int>(shifted.hparams().head_dim)),
            4.0f);
}

// SmolLM3's NoPE layers store keys without a position: a context shift moves them as
// they are (turning them would change them), while RoPE layers' keys are turned.
TEST(Architectures, SmolLM3ContextShiftMovesNoPeKeysUnturned) {
  std::string why;
  test::ScratchDir out;
  const std::string path = test::converted_reference("smollm3", DType::F32, out.path(), &why);
  if (path.empty()) GTEST_SKIP() << why;
  Model m(path, small_run());
  ASSERT_FALSE(layer_uses_rope(m.hparams(), 3));
  ASSERT_TRUE(layer_uses_rope(m.hparams(), 2));
  const Reference ref = load_reference(test::reference_checkpoint("smollm3", &why));
  m.forward(ref.tokens, nullptr);
  const int keep = 2, drop = 7;
  const KvCache& kv = m.kv_cache();
  auto key = [&](int layer, int pos) { return std::vector<uint8_t>(kv.key(layer, pos), kv.key(layer, pos) + kv.key_bytes()); };
  const auto nope_before = key(3, keep + drop), rope_before = key(2, keep + drop);
  m.shift_context(keep, drop);
  EXPECT_EQ(key(3, keep), nope_before);
  EXPECT_NE(key(2, keep), rope_before);
}

// The CUDA layers run Llama's recipe only: GPU offload of a Granite model (its
// multipliers), a Qwen2-MoE one (experts) or gpt-oss (sinks, biases) is refused, naming
// the steps, before any device is touched, so with or without CUDA.
TEST(Architectures, GpuOffloadRefusesStepsTheCudaLayersLack) {
  for (const char* arch : {"granite", "qwen2moe", "gpt-oss"}) {
    std::string why;
    test::ScratchDir out;
    const std::string path = test::converted_reference(arch, DType::Q8, out.path(), &why);
    if (path.empty()) GTEST_SKIP() << why;
    RuntimeOptions ro;
    ro.threads = 1;
    ro.context = 64;
    ro.gpu_layer_count = 1;
    try {
      Model m(path, ro);
      ADD_FAILURE() << arch << ": offload accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("GPU offload runs the Llama-family recipe only; " + std::string(arch)),
                std::string::npos) << e.what();
    }
  }
}

// Tolerances: f32 weights, f16 KV cache (keys and values rounded to 2^-11 relative;
// gpt-oss's YaRN attention factor, 1.35 on q and k, makes its scores more sensitive: the
// reference with its keys and values rounded to f16 moves by 8.7e-4 of the largest logit);
// q8: 5% of the largest logit (random weights quantize worse than trained ones).
// LongRoPE takes its long factors when the context exceeds the original one: phi3 runs
// in a context of 64 (short factors, as transformers for 24 tokens), phi3-long in 128
// past its original 16 (long factors, as transformers for 40 tokens).
INSTANTIATE_TEST_SUITE_P(Hf, Architectures,
                         ::testing::Values(ArchCase{"llama", 1e-3}, ArchCase{"llama-bias", 1e-3}, ArchCase{"llama-yarn", 1e-3}, ArchCase{"qwen2", 1e-3},
                                           ArchCase{"qwen3", 1e-3}, ArchCase{"qwen3moe", 1e-3}, ArchCase{"mixtral", 1e-3},
                                           ArchCase{"gemma2", 1e-3}, ArchCase{"gemma3", 1e-3},
                                           ArchCase{"gemma3-mm", 1e-3}, ArchCase{"smollm3", 1e-3}, ArchCase{"phi3", 1e-3, 64},
                                           ArchCase{"phi3-long", 1e-3}, ArchCase{"phi4-mini", 1e-3},
                                           ArchCase{"granite", 1e-3}, ArchCase{"granitemoe", 1e-3},
                                           ArchCase{"qwen2moe", 1e-3}, ArchCase{"gpt-oss", 2e-3},
                                           ArchCase{"gpt-oss-unquantized", 2e-3}),
                         [](const auto& info) {
                           std::string n = info.param.arch;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace qrun
