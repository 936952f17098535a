// Attention of each (token, query head) over the layer's f16 KV cache on the device,
// with an online softmax (running max and sum, as src/runtime/attention.h does on the CPU),
// so no score matrix is materialised whatever the context length.
#include <cmath>

#include "src/cuda/cuda_check.h"
#include "src/cuda/cuda_kernels.cuh"

namespace qrun::cuda {

namespace {

constexpr int kWarps = 4;        // warps per (token, head); each takes every 4th position
constexpr int kMaxPerLane = 8;   // head_dim <= 256 (checked by the launcher)

// Grid (n_heads, n). Each lane owns elements lane, lane+32, ... of the head, so a
// score is one warp reduction and the weighted V sum needs no communication.
__global__ void attention_kernel(const float* q, const __half* k_cache, const __half* v_cache, float* out,
                                 int n_heads, int n_kv, int hd, int pos0, int window) {
  const int h = blockIdx.x, i = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int q_dim = n_heads * hd, kv_dim = n_kv * hd;
  const int kv_col = (h / (n_heads / n_kv)) * hd;
  const int t_end = pos0 + i + 1;
  const int t_begin = window > 0 ? max(0, t_end - window) : 0;
  const float scale = 1.0f / sqrtf(static_cast<float>(hd));

  float qv[kMaxPerLane], o[kMaxPerLane];
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int d = lane + 32 * e;
    qv[e] = d < hd ? q[int64_t{i} * q_dim + h * hd + d] : 0.0f;
    o[e] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int t = t_begin + warp; t < t_end; t += kWarps) {
    const __half* kr = k_cache + int64_t{t} * kv_dim + kv_col;
    float s = 0.0f;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int d = lane + 32 * e;
      if (d < hd) s += qv[e] * __half2float(kr[d]);
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    s *= scale;
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new), p = expf(s - m_new);
    l = l * corr + p;
    m = m_new;
    const __half* vr = v_cache + int64_t{t} * kv_dim + kv_col;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int d = lane + 32 * e;
      if (d < hd) o[e] = o[e] * corr + p * __half2float(vr[d]);
    }
  }

  // Merge the warps' partial softmaxes under their common maximum.
  __shared__ float sm[kWarps], sl[kWarps], so[kWarps][32 * kMaxPerLane];
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) so[warp][lane + 32 * e] = o[e];
  __syncthreads();
  float mx = -INFINITY;
  for (int w = 0; w < kWarps; ++w) mx = fmaxf(mx, sm[w]);
  float total = 0.0f;
  for (int w = 0; w < kWarps; ++w) total += sm[w] == -INFINITY ? 0.0f : sl[w] * expf(sm[w] - mx);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0.0f;
    for (int w = 0; w < kWarps; ++w)
      if (sm[w] != -INFINITY) acc += so[w][d] * expf(sm[w] - mx);
    out[int64_t{i} * q_dim + h * hd + d] = acc / total;
  }
}

}  // namespace

void attention(const float* q, const __half* k_cache, const __half* v_cache, float* out, int n, int n_heads, int n_kv,
               int hd, int pos0, int window, cudaStream_t stream) {
  if (hd > 32 * kMaxPerLane) throw Error("CUDA attention: head_dim " + std::to_string(hd) + " above 256");
  attention_kernel<<<dim3(static_cast<unsigned>(n_heads), static_cast<unsigned>(n)), kWarps * 32, 0, stream>>>(
      q, k_cache, v_cache, out, n_heads, n_kv, hd, pos0, window);
  check_launch("attention");
}

}  // namespace qrun::cuda
