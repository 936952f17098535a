// Each CUDA kernel against the CPU reference kernel (simd/reference.h) on the same
// inputs and the same blocks. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cuda_test_env.h"
#include "qrun/kv_cache.h"
#include "quant/quantize.h"
#include "simd/reference.h"
#include "src/runtime/attention.h"
#include "src/runtime/rope.h"

namespace qrun {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Weights of `rows` x `cols` stored as type t, exactly as the converter writes them.
std::vector<uint8_t> quantized_matrix(DType t, int64_t rows, int64_t cols, uint32_t seed) {
  const auto f = random_floats(size_t(rows * cols), seed, 0.05f);
  std::vector<uint8_t> w(size_t(rows * dtype_row_bytes(t, cols)));
  for (int64_t r = 0; r < rows; ++r) quantize_row(t, &f[size_t(r * cols)], cols, &w[size_t(r * dtype_row_bytes(t, cols))]);
  return w;
}

// GPU activation blocks are bit-identical to the CPU's: same scale, codes and sum.
TEST(CudaKernels, QuantizeActivationsBitIdentical) {
  QRUN_REQUIRE_GPU();
  const int64_t n = 3, cols = 200;  // 200: a zero-padded tail block
  auto x = random_floats(size_t(n * cols), 1);
  x[5] = 0.0f;
  std::fill(x.begin() + cols, x.begin() + cols + 32, 0.0f);  // an all-zero block: d = 0
  const int64_t nb = q8a_blocks(cols);
  std::vector<BlockQ8A> gpu(size_t(n * nb)), cpu(size_t(n * nb));
  cuda_testing::quantize_activations(x.data(), n, cols, gpu.data());
  for (int64_t i = 0; i < n; ++i) ref::quantize_activations(&x[size_t(i * cols)], cols, &cpu[size_t(i * nb)]);
  for (size_t b = 0; b < cpu.size(); ++b) {
    EXPECT_EQ(gpu[b].d, cpu[b].d) << b;
    EXPECT_EQ(gpu[b].sum, cpu[b].sum) << b;
    EXPECT_EQ(0, std::memcmp(gpu[b].qs, cpu[b].qs, 32)) << b;
  }
}

struct MatmulCase {
  DType type;
  int64_t rows, cols, n;
};

class CudaMatmul : public ::testing::TestWithParam<MatmulCase> {};

// Q8/Q4: integer block sums are exact on both sides, only the float sum of the scaled
// block results differs (float on the GPU, double in the reference): relative 1e-5 of
// the magnitude. F32/F16/BF16: float vs double accumulation, same bound.
TEST_P(CudaMatmul, MatchesReference) {
  QRUN_REQUIRE_GPU();
  const auto [t, rows, cols, n] = GetParam();
  const auto w = quantized_matrix(t, rows, cols, 7);
  const auto x = random_floats(size_t(n * cols), 11);
  const int64_t nb = q8a_blocks(cols);
  std::vector<BlockQ8A> xq(size_t(n * nb));
  for (int64_t i = 0; i < n; ++i) ref::quantize_activations(&x[size_t(i * cols)], cols, &xq[size_t(i * nb)]);
  std::vector<float> cpu(size_t(n * rows)), gpu(size_t(n * rows));
  ref::matmul(t, w.data(), rows, cols, n, x.data(), xq.data(), cpu.data(), rows);
  cuda_testing::matmul(t, w.data(), rows, cols, n, x.data(), gpu.data());
  // Magnitude of the terms, for a scale-aware bound.
  std::vector<float> wrow(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(t, &w[size_t(r * dtype_row_bytes(t, cols))], cols, wrow.data());
    for (int64_t i = 0; i < n; ++i) {
      double mag = 0;
      for (int64_t c = 0; c < cols; ++c) mag += std::fabs(wrow[size_t(c)] * x[size_t(i * cols + c)]);
      const size_t k = size_t(i * rows + r);
      EXPECT_NEAR(gpu[k], cpu[k], 1e-5 * mag + 1e-6) << dtype_name(t) << " row " << r << " token " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, CudaMatmul,
    ::testing::Values(MatmulCase{DType::Q4, 37, 256, 1}, MatmulCase{DType::Q4, 37, 172, 13},
                      MatmulCase{DType::Q4, 130, 2048, 64}, MatmulCase{DType::Q8, 37, 256, 1},
                      MatmulCase{DType::Q8, 37, 172, 13}, MatmulCase{DType::Q8, 130, 1000, 9},
                      MatmulCase{DType::F32, 37, 172, 1}, MatmulCase{DType::F32, 37, 100, 13},
                      MatmulCase{DType::F16, 37, 172, 1}, MatmulCase{DType::F16, 37, 256, 13},
                      MatmulCase{DType::BF16, 37, 172, 5}),
    [](const auto& info) {
      return std::string(dtype_name(info.param.type)) + "_" + std::to_string(info.param.rows) + "x" +
             std::to_string(info.param.cols) + "_n" + std::to_string(info.param.n);
    });

// Both reduce the sum of squares in double: equal to float rounding.
TEST(CudaKernels, RmsNormMatchesReference) {
  QRUN_REQUIRE_GPU();
  const int64_t n = 4, dim = 300;
  const auto x = random_floats(size_t(n * dim), 3), w = random_floats(size_t(dim), 4);
  std::vector<float> cpu(x.size()), gpu(x.size());
  for (int64_t i = 0; i < n; ++i) ref::rmsnorm(&cpu[size_t(i * dim)], &x[size_t(i * dim)], w.data(), dim, 1e-5f);
  cuda_testing::rmsnorm(gpu.data(), x.data(), w.data(), n, dim, 1e-5f);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 1e-6f * (1 + std::fabs(cpu[i]))) << i;
}

// expf on the device is within 2 ulp of std::exp.
TEST(CudaKernels, SwigluMatchesReference) {
  QRUN_REQUIRE_GPU();
  const auto up = random_floats(1000, 5);
  auto cpu = random_floats(1000, 6, 4.0f), gpu = cpu;
  ref::swiglu(cpu.data(), up.data(), 1000);
  cuda_testing::swiglu(gpu.data(), up.data(), 1000);
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 1e-6f * (1 + std::fabs(cpu[i]))) << i;
}

// Angles in double on both sides: same cos/sin up to float rounding.
TEST(CudaKernels, RopeMatchesCpu) {
  QRUN_REQUIRE_GPU();
  format::HParams hp{};
  hp.head_dim = 64;
  hp.rope_theta = 10000.0f;
  const auto inv = rope_inv_freq(hp);
  for (int pos : {0, 1, 17, 4095}) {
    auto cpu = random_floats(4 * 64, 8 + pos), gpu = cpu;
    rope_apply(cpu.data(), 4, 64, pos, inv);
    cuda_testing::rope(gpu.data(), 4, 64, pos, inv);
    for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 1e-5f) << "pos " << pos << " i " << i;
  }
}

struct AttentionCase {
  int n_heads, n_kv, head_dim, t_end, window;
};

class CudaAttention : public ::testing::TestWithParam<AttentionCase> {};

// Online softmax in a different order (4 interleaved warps vs tiles of 64): 1e-5.
TEST_P(CudaAttention, MatchesAttendHead) {
  QRUN_REQUIRE_GPU();
  const auto [n_heads, n_kv, hd, t_end, window] = GetParam();
  const int kv_dim = n_kv * hd;
  KvCache cache(1, t_end, kv_dim, hd);  // f16, as the device's cache
  const auto kf = random_floats(size_t(t_end) * kv_dim, 21), vf = random_floats(size_t(t_end) * kv_dim, 22);
  for (int t = 0; t < t_end; ++t) cache.store(0, t, &kf[size_t(t) * kv_dim], &vf[size_t(t) * kv_dim]);
  const auto q = random_floats(size_t(n_heads) * hd, 23);
  std::vector<float> cpu(q.size()), gpu(q.size()), tile(kAttentionTile);
  const int t_begin = window ? std::max(0, t_end - window) : 0;
  for (int h = 0; h < n_heads; ++h)
    attend_heads(&q[size_t(h) * hd], 1, cache, 0, (h / (n_heads / n_kv)) * hd, t_begin, t_end, hd,
                 &cpu[size_t(h) * hd], tile.data());
  cuda_testing::attention(q.data(), reinterpret_cast<const uint16_t*>(cache.key(0, 0)),
                          reinterpret_cast<const uint16_t*>(cache.value(0, 0)), n_heads, n_kv, hd, t_end, window,
                          gpu.data());
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 1e-5f) << i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttention,
                         ::testing::Values(AttentionCase{8, 4, 8, 1, 0},      // stories260K, first token
                                           AttentionCase{8, 4, 8, 70, 0},     // more than one CPU tile
                                           AttentionCase{32, 4, 64, 300, 0},  // tinyllama GQA
                                           AttentionCase{4, 4, 128, 200, 50},  // sliding window
                                           AttentionCase{2, 1, 256, 5, 0}));  // widest head

}  // namespace
}  // namespace qrun
