// Memory modes measured for real: layer streaming under a cgroup memory limit smaller
// than the model, and the memory estimate against the measured peak RSS.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <regex>

#include "common/hf_reference.h"
#include "common/memory_cgroup.h"
#include "common/model_fixture.h"
#include "common/run_command.h"
#include "common/synthetic_model.h"
#include "qrun/error.h"
#include "qrun/model_file.h"
#include "qrun/memory_estimate.h"
#include "qrun/model.h"
#include "qrun/run_plan.h"
#include "src/runtime/layer_streamer.h"

namespace qrun {
namespace {

using test::quoted;
using test::run_command;

std::string qrun_cmd(const std::string& model, const std::string& extra) {
  return (test::bin_dir() / "qrun").string() + " -m " + quoted(model) +
         " -p 'Once upon a time' --temp 0 --ignore-eos -t 2 " + extra;
}

// The generated text: stdout only (timings go to stderr).
std::string generated(const test::CommandResult& r) { return r.out.substr(0, r.out.find("\nqrun: load time")); }

double field_mib(const std::string& out, const std::string& label) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(label + " ([0-9.]+) MiB"))) return -1;
  return std::stod(m[1]);
}

int resident_count(const StreamingPlan& p) { return static_cast<int>(std::count(p.resident.begin(), p.resident.end(), true)); }

TEST(StreamingPlan, KeepsWhatFitsAndRefusesWithNumbers) {
  ModelFile f(test::converted_stories(DType::F32).string());
  uint64_t layers = 0, global = 0;
  for (const auto& r : f.layers()) layers += r.size;
  for (const auto& t : f.tensors())
    if (t.layer < 0) global += t.size;
  const std::vector<bool> host(5, true);
  const StreamingPlan all = plan_streaming(f, host, 1ull << 30, 1 << 20);
  EXPECT_EQ(resident_count(all), 5);
  EXPECT_EQ(all.window_bytes, 0u);
  const uint64_t tight = (1 << 20) + global + 2 * f.layers()[0].size + f.layers()[0].size;
  const StreamingPlan some = plan_streaming(f, host, tight, 1 << 20);
  EXPECT_EQ(resident_count(some), 1);
  EXPECT_TRUE(some.resident[0]);
  try {
    plan_streaming(f, host, global, 1 << 20);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("memory budget"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("two streamed layers"), std::string::npos);
  }
}

// --mem-budget with GPU layers (issue 13): the plan gives GPU layers no host KV cache,
// keeps them out of the budget and out of streaming; planning needs no GPU.
TEST(RunPlan, GpuLayersAreNeitherStreamedNorInTheHostBudget) {
  ModelFile f(test::converted_stories(DType::F32).string());
  RuntimeOptions ro;
  ro.context = 64;
  ro.threads = 1;
  const RunPlan cpu = plan_run(f, ro);
  ASSERT_EQ(cpu.count(LayerPlace::Resident), 5);
  ro.gpu_first_layer = 2;
  ro.gpu_layer_count = 2;
  const RunPlan gpu = plan_run(f, ro);
  EXPECT_EQ(gpu.count(LayerPlace::Gpu), 2);
  EXPECT_TRUE(gpu.on_gpu(2) && gpu.on_gpu(3) && !gpu.on_gpu(4));
  EXPECT_EQ(gpu.kv_cache_bytes, cpu.kv_cache_bytes / 5 * 3);  // three host layers
  EXPECT_EQ(gpu.kv_slot(1), 1);
  EXPECT_EQ(gpu.kv_slot(2), -1);
  EXPECT_EQ(gpu.kv_slot(4), 2);
  EXPECT_EQ(gpu.weight_bytes, cpu.weight_bytes - f.layers()[2].size - f.layers()[3].size);
  EXPECT_GT(gpu.device_bytes, 0u);
  // A budget with room for one host layer beyond the streaming window: layer 0 stays,
  // 1 and 4 stream, 2 and 3 are the GPU's.
  uint64_t global = 0;
  for (const auto& t : f.tensors())
    if (t.layer < 0) global += t.size;
  const uint64_t fixed = gpu.kv_cache_bytes + gpu.scratch_bytes + kRuntimeOverheadBytes;
  ro.mem_budget = fixed + global + 3 * f.layers()[0].size + 4096;
  const RunPlan both = plan_run(f, ro);
  EXPECT_EQ(both.layers, (std::vector<LayerPlace>{LayerPlace::Resident, LayerPlace::Streamed, LayerPlace::Gpu,
                                                   LayerPlace::Gpu, LayerPlace::Streamed}));
  EXPECT_EQ(both.kv_cache_bytes, gpu.kv_cache_bytes);
}

// The streamer reads only streamed layers: never a GPU layer, never a resident one,
// including the read-ahead after the last layer.
TEST(RunPlan, StreamerNeverReadsGpuOrResidentLayers) {
  ModelFile f(test::converted_stories(DType::F32).string());
  const std::vector<LayerPlace> places = {LayerPlace::Resident, LayerPlace::Streamed, LayerPlace::Gpu, LayerPlace::Gpu,
                                          LayerPlace::Streamed};
  LayerStreamer s(f, places, false);
  ASSERT_TRUE(s.enabled());
  for (int pass = 0; pass < 3; ++pass) {
    for (int l = 0; l < 5; ++l) {
      if (places[size_t(l)] == LayerPlace::Gpu) continue;  // the forward pass hands these to the GPU
      s.before_layer(l);
      s.after_layer(l);
    }
  }
  EXPECT_EQ(s.reads(0), 0);
  EXPECT_EQ(s.reads(2), 0);
  EXPECT_EQ(s.reads(3), 0);
  EXPECT_GE(s.reads(1), 3);
  EXPECT_GE(s.reads(4), 3);
}

TEST(LayerStreaming, SameOutputWhenStreamingAndRefusalWhenTooSmall) {
  const auto model = test::converted_stories(DType::F32).string();
  const auto plain = run_command(qrun_cmd(model, "-n 40"));
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  // A budget that keeps embeddings and a layer or two, streams the rest.
  const auto streamed = run_command(qrun_cmd(model, "-n 40 -c 64 --mem-budget 7.5M"));
  ASSERT_EQ(streamed.exit_code, 0) << streamed.out;
  EXPECT_EQ(generated(streamed), generated(plain));
  EXPECT_NE(streamed.out.find("streamed"), std::string::npos) << streamed.out;
  const auto refused = run_command(qrun_cmd(model, "-n 4 --mem-budget 1M"));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.out.find("memory budget"), std::string::npos) << refused.out;
}

// Every mixture-of-experts architecture's file keeps each layer's experts last (Qwen2-MoE's
// shared expert, GraniteMoe's split experts and gpt-oss's expert biases included), so streaming reads only the
// chosen ones rather than whole layers.
TEST(LayerStreaming, EveryMixtureKeepsItsExpertsLast) {
  for (const char* arch : {"qwen3moe", "mixtral", "granitemoe", "qwen2moe", "gpt-oss"}) {
    std::string why;
    test::ScratchDir out;
    const std::string path = test::converted_reference(arch, DType::Q8, out.path(), &why);
    if (path.empty()) GTEST_SKIP() << why;
    const ModelFile f(path);
    for (int l = 0; l < static_cast<int>(f.hparams().n_layers); ++l) {
      const LayerStreamRanges r = layer_stream_ranges(f, l);
      EXPECT_EQ(r.experts.size(), 3u) << arch << " layer " << l;
      EXPECT_LT(r.ahead, r.size) << arch << " layer " << l;
    }
  }
}

// A streamed mixture-of-experts layer reads its part before the experts ahead, then only
// the experts the router picked: the same logits as a mapped run, from fewer bytes.
TEST(LayerStreaming, MixtureOfExpertsReadsOnlyTheChosenExperts) {
  std::string why;
  test::ScratchDir out;
  const std::string path = test::converted_reference("qwen3moe", DType::F32, out.path(), &why);
  if (path.empty()) GTEST_SKIP() << why;
  const ModelFile f(path);
  const auto& hp = f.hparams();
  const LayerStreamRanges r0 = layer_stream_ranges(f, 0), r1 = layer_stream_ranges(f, 1);
  ASSERT_EQ(r0.experts.size(), 3u);
  EXPECT_LT(r0.ahead, r0.size);
  for (const auto& e : r0.experts) {
    EXPECT_GE(e.offset, r0.offset + r0.ahead);
    EXPECT_LE(e.offset + hp.n_experts * e.expert_bytes, r0.offset + r0.size);
    EXPECT_EQ(e.expert_bytes, uint64_t{hp.hidden_dim} * hp.dim * 4);  // f32 rows of one expert
  }
  EXPECT_EQ(r0.step_bytes(2), r0.ahead + 2 * 3 * r0.experts[0].expert_bytes);

  const std::vector<LayerPlace> all_streamed(hp.n_layers, LayerPlace::Streamed);
  LayerStreamer streamer(f, all_streamed, false);
  streamer.before_layer(0);  // layer 0's part before the experts, and layer 1's read ahead
  const int32_t picked[] = {2, 5, 7};
  streamer.fetch_experts(0, picked);
  streamer.after_layer(0);
  EXPECT_EQ(streamer.bytes_requested(), r0.ahead + r1.ahead + 3 * 3 * r0.experts[0].expert_bytes);

  // Every layer streamed (the budget has room for the window only) against a mapped run.
  RuntimeOptions ro;
  ro.threads = 2;
  ro.context = 64;
  Model mapped(path, ro);
  uint64_t global = 0;
  for (const auto& t : f.tensors())
    if (t.layer < 0) global += t.size;
  ro.mem_budget = mapped.plan().kv_cache_bytes + mapped.plan().scratch_bytes + kRuntimeOverheadBytes + global +
                  2 * r0.step_bytes(hp.n_experts_used) + 4096;
  Model streamed(path, ro);
  ASSERT_EQ(streamed.plan().count(LayerPlace::Streamed), static_cast<int>(hp.n_layers));
  const std::vector<int32_t> prompt = test::load_reference(test::reference_checkpoint("qwen3moe", &why)).tokens;
  const size_t vocab = hp.vocab_size;
  std::vector<float> a(prompt.size() * vocab), b(prompt.size() * vocab), sa(vocab), sb(vocab);
  mapped.forward(prompt, a.data(), true);
  streamed.forward(prompt, b.data(), true);
  EXPECT_EQ(a, b);
  mapped.step(prompt[3], sa.data());
  streamed.step(prompt[3], sb.data());
  EXPECT_EQ(sa, sb);
}

TEST(LayerStreaming, RunsUnderACgroupLimitSmallerThanTheModel) {
  std::string why;
  const std::string model = test::synthetic_model("smollm-135m", DType::F16, &why);
  if (model.empty()) GTEST_SKIP() << why;
  const uint64_t model_bytes = ModelFile(model).header().file_size;
  const uint64_t limit = 200ull << 20;
  ASSERT_GT(model_bytes, limit);
  test::MemoryCgroup cg(limit);
  if (!cg.ok()) GTEST_SKIP() << "cgroup unavailable: " << cg.why();

  const auto plain = run_command(qrun_cmd(model, "-n 12 -c 256"));
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  // Start cold: pages cached by the unconstrained run were charged elsewhere.
  {
    const int fd = ::open(model.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  const auto limited = run_command(cg.enter_prefix() + qrun_cmd(model, "-n 12 -c 256 --mem-budget 150M"));
  EXPECT_EQ(limited.exit_code, 0) << limited.out;
  EXPECT_EQ(cg.oom_kills(), 0u);
  EXPECT_EQ(generated(limited), generated(plain));
  std::printf("model %.0f MiB, cgroup limit %.0f MiB, cgroup peak %.1f MiB\n%s\n", model_bytes / 1048576.0,
              limit / 1048576.0, cg.peak_bytes() / 1048576.0, limited.out.c_str());
}

// --estimate predicts peak RSS within 5% across contexts and load modes.
TEST(MemoryEstimate, WithinFivePercentOfMeasuredPeak) {
#if defined(QRUN_SANITIZED)
  // ASan's shadow memory and allocator add ~100 MiB of RSS that a release build does not have.
  GTEST_SKIP() << "the estimate is for release builds; AddressSanitizer adds its own memory";
#endif
  std::string why;
  const std::string model = test::synthetic_model("smollm-135m", DType::F16, &why);
  if (model.empty()) GTEST_SKIP() << why;
  // The 257 MiB model under a 150-200 MiB budget streams most of its layers.
  for (const std::string mode : {"", "--no-mmap", "--mem-budget 150M", "--mem-budget 200M"}) {
    for (int ctx : {512, 2048, 8192}) {
      if (mode.starts_with("--mem-budget") && ctx == 8192) continue;  // its KV cache (188 MiB) exceeds these budgets
      const auto r = run_command(qrun_cmd(model, "-n 4 --verbose -c " + std::to_string(ctx) + " " + mode));
      ASSERT_EQ(r.exit_code, 0) << r.out;
      const double predicted = field_mib(r.out, "predicted peak memory");
      const double measured = field_mib(r.out, "peak RSS");
      ASSERT_GT(predicted, 0) << r.out;
      ASSERT_GT(measured, 0) << r.out;
      std::printf("ctx %5d %-17s predicted %8.1f MiB measured %8.1f MiB (%+.1f%%)\n", ctx, mode.c_str(), predicted,
                  measured, 100 * (predicted - measured) / measured);
      EXPECT_NEAR(predicted, measured, 0.05 * measured) << "ctx " << ctx << " " << mode;
    }
  }
}

}  // namespace
}  // namespace qrun
