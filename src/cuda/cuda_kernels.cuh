// Launchers of the device kernels of one offloaded layer. Every pointer is device
// memory; every launch goes on `stream` and is checked. Layouts match the CPU side:
// weights in the file's block layout (quant/block_formats.h), activations row-major
// n tokens x width floats, the KV cache f16 [capacity][kv_dim] per layer.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "qrun/dtype.h"
#include "simd/kernels.h"  // BlockQ8A, the int8 activation block shared with the CPU

namespace qrun::cuda {

// cuda_matmul.cu --------------------------------------------------------------------

// x: n rows of `cols` floats -> n rows of q8a_blocks(cols) blocks, bit-identical to
// qrun::quantize_activations (same float ops, round to nearest even).
void quantize_activations(const float* x, int64_t n, int64_t cols, BlockQ8A* xq, cudaStream_t stream);

// Y[i*ldy + r] = W row r . X row i, for n tokens. Q8/Q4 weights read xq (quantized X),
// F32/F16/BF16 weights read x. With accumulate, Y += instead of Y = (residual adds).
void matmul(DType t, const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const float* x,
            const BlockQ8A* xq, float* y, int64_t ldy, bool accumulate, cudaStream_t stream);

// cuda_elementwise.cu ---------------------------------------------------------------

// out row i = x row i * rsqrt(mean(x row i ^ 2) + eps) * weight, for n rows of dim.
void rmsnorm(float* out, const float* x, const float* weight, int64_t n, int64_t dim, float eps,
             cudaStream_t stream);

// gate = silu(gate) * up, elementwise over count floats.
void swiglu(float* gate, const float* up, int64_t count, cudaStream_t stream);

// For token i of n (position pos0+i): optional q/k/v biases, rotate-half RoPE on q and
// k, and k/v stored as f16 into the cache rows pos0+i. q: n x n_heads*hd, k/v: n x
// n_kv*hd. Biases may be null. inv_freq: hd/2 floats.
void rope_and_store(float* q, float* k, const float* v, const float* bq, const float* bk, const float* bv,
                    int n, int n_heads, int n_kv, int hd, int pos0, const float* inv_freq,
                    __half* k_cache, __half* v_cache, cudaStream_t stream);

// cuda_attention.cu -----------------------------------------------------------------

// out (n x n_heads*hd) = softmax(q K^T / sqrt(hd)) V per token and head, token i seeing
// cache positions [max(0, pos0+i+1-window), pos0+i] (window 0: all). Query head h
// reads kv head h / (n_heads / n_kv).
void attention(const float* q, const __half* k_cache, const __half* v_cache, float* out, int n, int n_heads,
               int n_kv, int hd, int pos0, int window, cudaStream_t stream);

}  // namespace qrun::cuda
