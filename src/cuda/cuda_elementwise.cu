// The small per-token operations of a layer: RMS norm, SwiGLU, and the RoPE step that
// also writes keys and values into the layer's device KV cache (fused, because all
// three touch the same few floats per token).
#include "src/cuda/cuda_check.h"
#include "src/cuda/cuda_kernels.cuh"

namespace qrun::cuda {

namespace {

constexpr int kThreads = 256;

// One thread block per row; the sum of squares is reduced in double like the CPU
// reference, so the norm is not where GPU and CPU drift apart.
__global__ void rmsnorm_kernel(float* out, const float* x, const float* weight, int64_t dim, float eps) {
  __shared__ double partial[kThreads];
  const float* xr = x + int64_t{blockIdx.x} * dim;
  float* yr = out + int64_t{blockIdx.x} * dim;
  double ss = 0.0;
  for (int64_t i = threadIdx.x; i < dim; i += kThreads) ss += double{xr[i]} * xr[i];
  partial[threadIdx.x] = ss;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  const float inv = static_cast<float>(1.0 / sqrt(partial[0] / static_cast<double>(dim) + eps));
  for (int64_t i = threadIdx.x; i < dim; i += kThreads) yr[i] = xr[i] * inv * weight[i];
}

__global__ void swiglu_kernel(float* gate, const float* up, int64_t count) {
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const float g = gate[i];
  gate[i] = g / (1.0f + expf(-g)) * up[i];
}

// Rotates the pair (j, j + hd/2) of one head; the angle is taken in double as on the
// CPU (rope_apply), since positions times frequencies lose bits in float.
__device__ void rotate(float* v, int j, int half, double c, double s) {
  const float cs = static_cast<float>(c), sn = static_cast<float>(s);
  const float a = v[j], b = v[j + half];
  v[j] = a * cs - b * sn;
  v[j + half] = a * sn + b * cs;
}

// Grid: one block per token. Biases first (every element), then the rotation of q
// and k pairs, then k and v go to the cache as f16 (round to nearest even).
__global__ void rope_store_kernel(float* q, float* k, const float* v, const float* bq, const float* bk,
                                  const float* bv, int n_heads, int n_kv, int hd, int pos0,
                                  const float* inv_freq, __half* k_cache, __half* v_cache) {
  const int i = blockIdx.x, pos = pos0 + i, half = hd / 2;
  const int q_dim = n_heads * hd, kv_dim = n_kv * hd;
  float* qi = q + int64_t{i} * q_dim;
  float* ki = k + int64_t{i} * kv_dim;
  const float* vi = v + int64_t{i} * kv_dim;
  if (bq) {
    for (int e = threadIdx.x; e < q_dim; e += blockDim.x) qi[e] += bq[e];
    for (int e = threadIdx.x; e < kv_dim; e += blockDim.x) ki[e] += bk[e];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < (n_heads + n_kv) * half; e += blockDim.x) {
    const int h = e / half, j = e % half;
    double s, c;
    sincos(static_cast<double>(pos) * inv_freq[j], &s, &c);
    if (h < n_heads) rotate(qi + h * hd, j, half, c, s);
    else rotate(ki + (h - n_heads) * hd, j, half, c, s);
  }
  __syncthreads();
  __half* kc = k_cache + int64_t{pos} * kv_dim;
  __half* vc = v_cache + int64_t{pos} * kv_dim;
  for (int e = threadIdx.x; e < kv_dim; e += blockDim.x) {
    kc[e] = __float2half_rn(ki[e]);
    vc[e] = __float2half_rn(bv ? vi[e] + bv[e] : vi[e]);
  }
}

}  // namespace

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, int64_t dim, float eps,
             cudaStream_t stream) {
  rmsnorm_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(out, x, weight, dim, eps);
  check_launch("rmsnorm");
}

void swiglu(float* gate, const float* up, int64_t count, cudaStream_t stream) {
  swiglu_kernel<<<static_cast<unsigned>((count + kThreads - 1) / kThreads), kThreads, 0, stream>>>(gate, up, count);
  check_launch("swiglu");
}

void rope_and_store(float* q, float* k, const float* v, const float* bq, const float* bk, const float* bv, int n,
                    int n_heads, int n_kv, int hd, int pos0, const float* inv_freq, __half* k_cache,
                    __half* v_cache, cudaStream_t stream) {
  rope_store_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(q, k, v, bq, bk, bv, n_heads, n_kv, hd, pos0,
                                                                      inv_freq, k_cache, v_cache);
  check_launch("rope_and_store");
}

}  // namespace qrun::cuda
