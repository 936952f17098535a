// Whole-model checks of the GPU offload: greedy output with layers on the GPU equals
// CPU-only greedy output (stories260K in every weight type, a synthetic llama), the
// clear refusals, and the sizing arithmetic. GPU tests skip without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "common/greedy.h"
#include "common/synthetic_model.h"
#include "convert/converter.h"
#include "cuda_test_env.h"
#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/model.h"
#include "src/runtime/gpu_offload.h"
#include "src/runtime/layer_weights.h"

namespace qrun {
namespace {

// stories260K converted once per type into a scratch folder.
const std::string& stories(DType t) {
  static test::ScratchDir dir;
  static std::map<DType, std::string> done;
  auto it = done.find(t);
  if (it != done.end()) return it->second;
  const auto out = dir / ("stories260K." + std::string(dtype_name(t)));
  ConvertOptions opt;
  opt.weight_type = t;
  opt.threads = 2;
  convert_hf_checkpoint((test::cuda_shared_dir() / "models/stories260K").string(), out.string(), opt);
  return done.emplace(t, out.string()).first->second;
}

// The golden prompts' token ids (BOS first), so these tests do not depend on encode().
std::vector<std::vector<int32_t>> golden_prompts() {
  std::ifstream in(test::cuda_shared_dir() / "golden/stories260K/greedy_f32.jsonl");
  std::vector<std::vector<int32_t>> out;
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line)["prompt_ids"].get<std::vector<int32_t>>());
  return out;
}

std::unique_ptr<Model> load(const std::string& path, int gpu_first, int gpu_count, int batch = 64) {
  RuntimeOptions ro;
  ro.threads = 2;
  ro.batch = batch;
  ro.context = 512;
  ro.gpu_first_layer = gpu_first;
  ro.gpu_layer_count = gpu_count;
  return std::make_unique<Model>(path, ro);
}

using test::greedy;

// Teacher-forced logits of a sequence (batched prompt path), all positions.
std::vector<float> all_logits(Model& m, const std::vector<int32_t>& seq) {
  m.reset();
  std::vector<float> logits(seq.size() * m.hparams().vocab_size);
  m.forward(seq, logits.data(), true);
  return logits;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return static_cast<size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin());
}

// Fraction of positions whose argmax agrees between two all-position logit arrays.
double top1_agreement(const std::vector<float>& a, const std::vector<float>& b, size_t vocab) {
  size_t same = 0, n = a.size() / vocab;
  for (size_t p = 0; p < n; ++p) {
    const float* x = &a[p * vocab];
    const float* y = &b[p * vocab];
    same += std::max_element(x, x + vocab) - x == std::max_element(y, y + vocab) - y;
  }
  return static_cast<double>(same) / static_cast<double>(n);
}

class CudaOffloadStories : public ::testing::TestWithParam<DType> {};

// The last half of the layers on the GPU (-ngl 3 of 5), every golden prompt, 100
// greedy tokens, against CPU-only.
// F32/F16: the greedy output is identical and all logits agree within 1e-3 of their
// range (GPU and CPU sum in different orders; measured ~1e-4).
// Q8/Q4: activations are rounded to int8 per block on both sides, bit-identically for
// identical inputs, but a last-bit difference upstream can move one code, and
// stories260K amplifies that: greedy output must agree for the first 16 tokens of
// every prompt, in full for at least 2 of the 5, and teacher-forced top-1 at >= 95% of
// positions. Measured on an H100: Q4 100/100/18/100/100 tokens, Q8 100/86/100/29/32.
TEST_P(CudaOffloadStories, HalfOffloadedGreedyEqualsCpu) {
  QRUN_REQUIRE_GPU();
  const DType t = GetParam();
  const bool quantized = dtype_is_quantized(t);
  auto cpu = load(stories(t), 0, 0);
  const int layers = static_cast<int>(cpu->hparams().n_layers);
  auto gpu = load(stories(t), layers / 2, layers - layers / 2);
  EXPECT_EQ(gpu->gpu_layers(), layers - layers / 2);
  const size_t vocab = cpu->hparams().vocab_size;
  int full_matches = 0, prompts = 0;
  for (const auto& prompt : golden_prompts()) {
    ++prompts;
    const auto want = greedy(*cpu, prompt, 100), got = greedy(*gpu, prompt, 100);
    const size_t prefix = common_prefix(want, got);
    std::printf("%s prompt %d: greedy tokens equal to CPU: %zu of 100\n", std::string(dtype_name(t)).c_str(),
                prompts, prefix);
    full_matches += prefix == want.size();
    if (!quantized) {
      EXPECT_EQ(got, want) << dtype_name(t);
    }
    EXPECT_GE(prefix, 16u) << dtype_name(t);
    std::vector<int32_t> seq = prompt;
    seq.insert(seq.end(), want.begin(), want.end() - 1);
    const auto a = all_logits(*gpu, seq), b = all_logits(*cpu, seq);
    float range = 0;
    for (float v : b) range = std::max(range, std::abs(v));
    if (!quantized) {
      EXPECT_LT(max_abs_diff(a, b), 1e-3f * range) << dtype_name(t);
    }
    EXPECT_GE(top1_agreement(a, b, vocab), 0.95) << dtype_name(t);
  }
  if (quantized) {
    EXPECT_GE(full_matches, 2) << "prompts whose 100 greedy tokens all match";
  }
}

INSTANTIATE_TEST_SUITE_P(Types, CudaOffloadStories, ::testing::Values(DType::Q4, DType::Q8, DType::F16, DType::F32),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Any contiguous range works (F32, so exact greedy equality holds): the first layers,
// a middle run, every layer; prompt batches of 64 and of 5 (smaller than the prompt).
TEST(CudaOffload, AnyRangeAndBatchEqualsCpu) {
  QRUN_REQUIRE_GPU();
  const auto prompt = golden_prompts().at(1);
  auto cpu = load(stories(DType::F32), 0, 0);
  const auto want = greedy(*cpu, prompt, 64);
  const int layers = static_cast<int>(cpu->hparams().n_layers);
  for (const auto& [first, count] : {std::pair{0, 2}, std::pair{1, 3}, std::pair{0, layers}}) {
    for (int batch : {64, 5}) {
      auto gpu = load(stories(DType::F32), first, count, batch);
      EXPECT_EQ(greedy(*gpu, prompt, 64), want) << "layers " << first << "+" << count << " batch " << batch;
    }
  }
}

// A full-width synthetic llama (dim 256, GQA 8/2, vocab 32000) in Q4, half offloaded.
TEST(CudaOffload, SyntheticLlamaTinyGreedyEqualsCpu) {
  QRUN_REQUIRE_GPU();
  std::string why;
  const std::string path = test::synthetic_model("llama-tiny", DType::Q4, &why);
  if (path.empty()) GTEST_SKIP() << why;
  auto cpu = load(path, 0, 0);
  const int layers = static_cast<int>(cpu->hparams().n_layers);
  auto gpu = load(path, layers / 2, layers - layers / 2);
  const std::vector<int32_t> prompt = {1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889};
  const auto want = greedy(*cpu, prompt, 48);
  EXPECT_GE(common_prefix(greedy(*gpu, prompt, 48), want), 16u);
  std::vector<int32_t> seq = prompt;
  seq.insert(seq.end(), want.begin(), want.end());
  const auto a = all_logits(*gpu, seq), b = all_logits(*cpu, seq);
  float scale = 0;
  for (float v : b) scale = std::max(scale, std::abs(v));
  // Q4 (see HalfOffloadedGreedyEqualsCpu): moved int8 codes show as ~1% of the range.
  EXPECT_LT(max_abs_diff(a, b), 0.02f * scale);
  EXPECT_GE(top1_agreement(a, b, cpu->hparams().vocab_size), 0.95);
}

// Layers that cannot fit are refused before anything is copied, saying how many would.
TEST(CudaOffload, TooLargeIsRefusedSayingWhatFits) {
  QRUN_REQUIRE_GPU();
  const ModelFile file(stories(DType::Q4));
  const ModelWeights no_weights{};  // never read: the size check comes first
  try {
    // 2^28 positions x 2 x kv_dim 32 x 2 bytes = 32 GiB of KV cache per layer.
    GpuOffload::create(file, no_weights, GpuLayerRange{0, 5}, 1 << 28, 64);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("MiB are free"), std::string::npos) << what;
    EXPECT_NE(what.find("layers would fit"), std::string::npos) << what;
  }
}

// Without a GPU (or without the CUDA backend) asking for GPU layers is a clear error,
// not a crash or a silent CPU run.
TEST(CudaOffload, NoGpuIsAClearError) {
  std::string why;
  if (cuda_testing::gpu_available(&why)) GTEST_SKIP() << "a GPU is present";
  try {
    load(stories(DType::Q4), 3, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(what.find("CUDA") != std::string::npos || what.find("GPU") != std::string::npos) << what;
  }
}

TEST(CudaOffload, DeviceBytesCountWeightsCacheAndBuffers) {
  const ModelFile file(stories(DType::Q4));
  EXPECT_EQ(GpuOffload::device_bytes(file, GpuLayerRange{0, 0}, 512, 64), 0u);
  const uint64_t one = GpuOffload::device_bytes(file, GpuLayerRange{4, 1}, 512, 64);
  const uint64_t two = GpuOffload::device_bytes(file, GpuLayerRange{3, 2}, 512, 64);
  const auto& hp = file.hparams();
  const uint64_t kv = 2ull * 512 * hp.n_kv_heads * hp.head_dim * 2;
  EXPECT_GE(one, file.layers()[4].size + kv);
  EXPECT_EQ(two - one, file.layers()[3].size + kv);
  EXPECT_GT(GpuOffload::device_bytes(file, GpuLayerRange{4, 1}, 1024, 64), one);
}

// --mem-budget with -ngl (issue 13): the middle layers on the GPU, the host layers
// streamed under a budget. The greedy output equals the CPU-only run, and the host plan
// streams only host layers.
TEST(CudaOffloadPlan, BudgetAndGpuLayersTogether) {
  QRUN_REQUIRE_GPU();
  const std::string path = stories(DType::F32);
  auto cpu = load(path, 0, 0);
  RuntimeOptions ro;
  ro.threads = 2;
  ro.context = 512;
  ro.gpu_first_layer = 1;
  ro.gpu_layer_count = 2;
  ro.mem_budget = 7 << 20;
  Model both(path, ro);
  EXPECT_EQ(both.gpu_layers(), 2);
  EXPECT_GT(both.streamed_layers(), 0);
  for (int l = 1; l <= 2; ++l) EXPECT_EQ(both.plan().layers[size_t(l)], LayerPlace::Gpu);
  for (const auto& prompt : golden_prompts()) EXPECT_EQ(greedy(both, prompt, 40), greedy(*cpu, prompt, 40));
}

}  // namespace
}  // namespace qrun
