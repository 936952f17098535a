// Host-memory wrappers around the device kernels, for tests that compare them with
// the CPU reference kernels on the same inputs. Plain C++ (no CUDA headers) so tests
// compile in every build; without CUDA gpu_available() says why and the rest throw.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qrun/dtype.h"
#include "simd/kernels.h"

namespace qrun::cuda_testing {

// True when a usable CUDA device exists; otherwise false and *why (for GTEST_SKIP).
bool gpu_available(std::string* why);

// n rows of cols floats -> n * q8a_blocks(cols) blocks.
void quantize_activations(const float* x, int64_t n, int64_t cols, BlockQ8A* out);
// y (n x rows) = W (rows x cols, type t, file layout) times x (n x cols); Q8/Q4 weights
// quantize x on the device first, as the offloaded layers do.
void matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x, float* y);
void rmsnorm(float* out, const float* x, const float* weight, int64_t n, int64_t dim, float eps);
void swiglu(float* gate, const float* up, int64_t count);
// Rotate-half RoPE of n_heads heads of one token at position pos.
void rope(float* x, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq);
// One token's attention at position t_end-1 over f16 K/V rows [0, t_end) of kv_dim =
// n_kv * head_dim; out: n_heads * head_dim. window 0: the whole range.
void attention(const float* q, const uint16_t* k, const uint16_t* v, int n_heads, int n_kv, int head_dim,
               int t_end, int window, float* out);

}  // namespace qrun::cuda_testing
