// Kernel throughput, one thread: matvec (token generation, weight-bandwidth bound;
// bytes/s counts weight bytes) and matmul over 64 tokens (prompt processing, compute
// bound; FLOP/s counts 2 * rows * cols * n). The kernels run with the prefetch the
// runtime picks for this CPU (src/runtime/kernel_choice.h; QRUN_PREFETCH forces one).
// --target=AVX2 runs one compiled Highway target's kernels (bench/simd_target.h).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bench/simd_target.h"
#include "quant/quantize.h"
#include "simd/kernels.h"
#include "src/runtime/kernel_choice.h"

namespace {

using qrun::DType;

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> x;
  std::vector<qrun::BlockQ8A> xq;
  Weights(DType t, int64_t rows, int64_t cols, int64_t n) {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    std::vector<float> row(static_cast<size_t>(cols));
    const int64_t row_bytes = qrun::dtype_row_bytes(t, cols);
    bytes.resize(static_cast<size_t>(rows * row_bytes));
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : row) v = normal(rng);
      qrun::quantize_row(t, row.data(), cols, bytes.data() + r * row_bytes);
    }
    x.resize(static_cast<size_t>(n * cols));
    for (auto& v : x) v = normal(rng) * 50.0f;
    const int64_t nb = qrun::q8a_blocks(cols);
    xq.resize(static_cast<size_t>(n * nb));
    for (int64_t i = 0; i < n; ++i) qrun::quantize_activations(x.data() + i * cols, cols, xq.data() + i * nb);
  }
};

void BM_Matvec(benchmark::State& state, DType t) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const Weights w(t, rows, cols, 1);
  std::vector<float> y(static_cast<size_t>(rows));
  for (auto _ : state) {
    qrun::matvec(t, w.bytes.data(), rows, cols, w.x.data(), w.xq.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.bytes.size()));
  state.SetLabel(qrun::simd_target_name());
}

// Decode as the model sees it: the weights are streamed from DRAM, not from cache.
// Cycles through copies of the matrix totalling ~256 MiB (more than any L3).
void BM_MatvecDram(benchmark::State& state, DType t) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const Weights w(t, rows, cols, 1);
  const size_t bytes = w.bytes.size();
  const size_t copies = std::max<size_t>(2, (size_t{256} << 20) / bytes);
  std::vector<uint8_t> big(copies * bytes);
  for (size_t i = 0; i < copies; ++i) std::copy(w.bytes.begin(), w.bytes.end(), big.begin() + i * bytes);
  std::vector<float> y(static_cast<size_t>(rows));
  size_t i = 0;
  for (auto _ : state) {
    qrun::matvec(t, big.data() + i * bytes, rows, cols, w.x.data(), w.xq.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % copies;
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.SetLabel(qrun::simd_target_name());
}

void BM_Matmul(benchmark::State& state, DType t) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const Weights w(t, rows, cols, n);
  std::vector<float> y(static_cast<size_t>(rows * n));
  for (auto _ : state) {
    qrun::matmul(t, w.bytes.data(), rows, cols, n, w.x.data(), w.xq.data(), y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * double(rows) * double(cols) * double(n), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(qrun::simd_target_name());
}

void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t n = state.range(0);
  const Weights w(DType::Q8, 1, n, 1);
  std::vector<qrun::BlockQ8A> out(static_cast<size_t>(qrun::q8a_blocks(n)));
  for (auto _ : state) {
    qrun::quantize_activations(w.x.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * n * 4);
}

// The converter's cost: one 2048-wide row quantized with the scale search (the
// converter runs this on every row of every matrix, on all threads).
void BM_QuantizeRow(benchmark::State& state, DType t) {
  const int64_t cols = 2048;
  const Weights w(DType::F32, 1, cols, 1);
  std::vector<float> row(w.x.begin(), w.x.end());
  std::vector<uint8_t> out(static_cast<size_t>(qrun::dtype_row_bytes(t, cols)));
  for (auto _ : state) {
    qrun::quantize_row(t, row.data(), cols, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["weights/s"] = benchmark::Counter(double(cols), benchmark::Counter::kIsIterationInvariantRate);
}

// One decode step's attention for one KV head of TinyLlama's shape (head_dim 64, 4 KV
// heads per cache row, 8 query heads each) over n_keys cached positions: the 8 heads
// in calls of `heads` (8: the group at once, as the runtime does; 1: head by head).
// keys/s counts query-head x key pairs.
void BM_Attend(benchmark::State& state, qrun::KvType t) {
  const int64_t n_keys = state.range(0), heads = state.range(1), hd = 64, kv_dim = 4 * hd, group = 8;
  const int64_t row = qrun::kv_row_bytes(t, int(kv_dim), int(hd));
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> k(static_cast<size_t>(n_keys * row)), v(k.size());
  for (auto& b : k) b = uint8_t(byte(rng));
  for (auto& b : v) b = uint8_t(byte(rng));
  if (t != qrun::KvType::F16)  // sane f16 scales (0.01) at each block's start
    for (size_t b = 0; b < k.size(); b += size_t(qrun::kv_block_bytes(t, 32))) k[b] = v[b] = 0x1F, k[b + 1] = v[b + 1] = 0x21;
  else  // sane f16 values in [-2, 2): clear the top exponent bits
    for (size_t b = 1; b < k.size(); b += 2) k[b] &= 0xBF, v[b] &= 0xBF;
  std::vector<float> q(static_cast<size_t>(group * hd)), out(q.size()), tile(size_t(heads) * qrun::kAttentionTile);
  for (auto& x : q) x = std::normal_distribution<float>()(rng);
  for (auto _ : state) {
    for (int64_t h = 0; h < group; h += heads)
      qrun::attend({&q[size_t(h * hd)], heads, {k.data(), row, t}, {v.data(), row, t}, n_keys, hd, &out[size_t(h * hd)],
                    tile.data()});
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["keys/s"] = benchmark::Counter(double(n_keys * group), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(BM_Attend, f16, qrun::KvType::F16)->Args({2048, 1})->Args({2048, 8})->Args({8192, 8});
BENCHMARK_CAPTURE(BM_Attend, q8_0, qrun::KvType::Q8_0)->Args({2048, 1})->Args({2048, 8})->Args({8192, 8});
BENCHMARK_CAPTURE(BM_Attend, q4_0, qrun::KvType::Q4_0)->Args({2048, 1})->Args({2048, 8})->Args({8192, 8});
BENCHMARK_CAPTURE(BM_Attend, iq4_nl, qrun::KvType::IQ4_NL)->Args({2048, 1})->Args({2048, 8})->Args({8192, 8});

BENCHMARK_CAPTURE(BM_Matvec, q4, DType::Q4)->Args({2048, 2048})->Args({5632, 2048});
BENCHMARK_CAPTURE(BM_Matvec, q8, DType::Q8)->Args({2048, 2048})->Args({5632, 2048});
// In L2 (compute bound).
BENCHMARK_CAPTURE(BM_Matvec, q4_l2, DType::Q4)->Args({256, 2048})->Args({4, 2048});
BENCHMARK_CAPTURE(BM_Matvec, q8_l2, DType::Q8)->Args({128, 2048});
BENCHMARK_CAPTURE(BM_MatvecDram, q4, DType::Q4)->Args({5632, 2048});
BENCHMARK_CAPTURE(BM_MatvecDram, q8, DType::Q8)->Args({5632, 2048});
BENCHMARK_CAPTURE(BM_MatvecDram, q4n, DType::Q4N)->Args({5632, 2048})->Args({32000, 2048});
BENCHMARK_CAPTURE(BM_MatvecDram, q6, DType::Q6)->Args({5632, 2048})->Args({32000, 2048})->Args({256, 2048});
BENCHMARK_CAPTURE(BM_MatvecDram, q5, DType::Q5)->Args({5632, 2048});
BENCHMARK_CAPTURE(BM_MatvecDram, q3, DType::Q3)->Args({5632, 2048});
BENCHMARK_CAPTURE(BM_MatvecDram, q2k, DType::Q2K)->Args({5632, 2048});
BENCHMARK_CAPTURE(BM_Matvec, q2k_l2, DType::Q2K)->Args({256, 2048});
BENCHMARK_CAPTURE(BM_Matvec, q4n_l2, DType::Q4N)->Args({256, 2048});
BENCHMARK_CAPTURE(BM_Matvec, q6_l2, DType::Q6)->Args({128, 2048});
BENCHMARK_CAPTURE(BM_Matvec, q5_l2, DType::Q5)->Args({128, 2048});
BENCHMARK_CAPTURE(BM_Matvec, q3_l2, DType::Q3)->Args({256, 2048});
BENCHMARK_CAPTURE(BM_Matvec, f16, DType::F16)->Args({2048, 2048});
BENCHMARK_CAPTURE(BM_Matvec, f32, DType::F32)->Args({2048, 2048});
BENCHMARK_CAPTURE(BM_Matmul, q4, DType::Q4)->Args({2048, 2048, 64})->Args({5632, 2048, 64});
BENCHMARK_CAPTURE(BM_Matmul, q8, DType::Q8)->Args({2048, 2048, 64})->Args({5632, 2048, 64});
BENCHMARK_CAPTURE(BM_Matmul, q4n, DType::Q4N)->Args({2048, 2048, 64});
BENCHMARK_CAPTURE(BM_Matmul, q6, DType::Q6)->Args({2048, 2048, 64});
BENCHMARK_CAPTURE(BM_Matmul, q5, DType::Q5)->Args({2048, 2048, 64});
BENCHMARK_CAPTURE(BM_Matmul, q3, DType::Q3)->Args({2048, 2048, 64});
BENCHMARK_CAPTURE(BM_Matmul, q2k, DType::Q2K)->Args({2048, 2048, 64});
BENCHMARK_CAPTURE(BM_Matmul, f32, DType::F32)->Args({2048, 2048, 64});
BENCHMARK(BM_QuantizeActivations)->Arg(2048)->Arg(5632);
BENCHMARK_CAPTURE(BM_QuantizeRow, q8, DType::Q8);
BENCHMARK_CAPTURE(BM_QuantizeRow, q6, DType::Q6);
BENCHMARK_CAPTURE(BM_QuantizeRow, q5, DType::Q5);
BENCHMARK_CAPTURE(BM_QuantizeRow, q4n, DType::Q4N);
BENCHMARK_CAPTURE(BM_QuantizeRow, q4, DType::Q4);
BENCHMARK_CAPTURE(BM_QuantizeRow, q3, DType::Q3);
BENCHMARK_CAPTURE(BM_QuantizeRow, q2k, DType::Q2K);

}  // namespace

int main(int argc, char** argv) {
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--target=", 0) != 0) {
      argv[kept++] = argv[i];
      continue;
    }
    if (!qrun::bench::force_simd_target(arg.substr(9))) {
      std::fprintf(stderr, "kernels_bench: target %s is not compiled in or not supported by this CPU\n", arg.c_str() + 9);
      return 2;
    }
  }
  argc = kept;
  benchmark::AddCustomContext("kernel choice", qrun::apply_kernel_choice(""));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
