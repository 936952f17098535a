// Quantized matrix-vector / matrix-matrix products on the GPU, on the file's own
// blocks. Q8/Q4 weights are dotted with int8 activation blocks exactly like the CPU
// kernels (integer sum per block, then scaled), so offloaded layers round the same
// way as CPU ones and greedy output stays identical.
#include "src/cuda/cuda_check.h"
#include "src/cuda/cuda_kernels.cuh"

namespace qrun::cuda {

namespace {

constexpr int kWarps = 4;  // rows per thread block, one warp each

__device__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ int warp_sum_int(int v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// One warp per 32-element block, one lane per element. Same float operations as
// qrun::quantize_activations: d = amax/127, q = round_even(x * (127/amax)).
__global__ void quantize_kernel(const float* x, int64_t n, int64_t cols, BlockQ8A* xq) {
  const int64_t nb = (cols + 31) / 32;
  const int64_t blk = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (blk >= n * nb) return;  // whole warps exit together: blk is per warp
  const int64_t row = blk / nb, b = blk % nb, c = b * 32 + lane;
  const float v = c < cols ? x[row * cols + c] : 0.0f;
  const float amax = warp_max(fabsf(v));
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  const int q = max(-127, min(127, __float2int_rn(__fmul_rn(v, id))));
  const int sum = warp_sum_int(q);
  BlockQ8A& o = xq[blk];
  o.qs[lane] = static_cast<int8_t>(q);
  if (lane == 0) {
    o.d = amax / 127.0f;
    o.sum = sum;
  }
}

// Weight blocks are 2-byte aligned only (18 and 34 bytes), so they are read as u16.
__device__ uint32_t load_u32_from_u16(const uint16_t* p) { return uint32_t{p[0]} | (uint32_t{p[1]} << 16); }

// Unpacks one weight block into 8 words of 4 signed bytes, elements 0..31 in order,
// and its scale.
template <DType T>
__device__ void load_block(const uint8_t* blk, int (&wq)[8], float& d) {
  const auto* h = reinterpret_cast<const uint16_t*>(blk);
  d = __half2float(__ushort_as_half(h[0]));
  if constexpr (T == DType::Q8) {
#pragma unroll
    for (int k = 0; k < 8; ++k) wq[k] = static_cast<int>(load_u32_from_u16(h + 1 + 2 * k));
  } else {
    // Byte j: element j in the low nibble, element j+16 in the high one.
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t p = load_u32_from_u16(h + 1 + 2 * k);
      wq[k] = static_cast<int>(p & 0x0F0F0F0Fu);
      wq[k + 4] = static_cast<int>((p >> 4) & 0x0F0F0F0Fu);
    }
  }
}

template <DType T>
__device__ float load_elem(const uint8_t* row, int64_t c) {
  if constexpr (T == DType::F32) return reinterpret_cast<const float*>(row)[c];
  if constexpr (T == DType::F16) return __half2float(__ushort_as_half(reinterpret_cast<const uint16_t*>(row)[c]));
  if constexpr (T == DType::BF16) return __uint_as_float(uint32_t{reinterpret_cast<const uint16_t*>(row)[c]} << 16);
  return 0.0f;
}

// One warp per weight row; each warp serves kTok tokens per pass so a weight block is
// read once from memory and reused from registers (prompt batches), and kTok = 1
// keeps decoding lean. Lanes stride over the row's blocks, then reduce.
template <DType T, int kTok>
__global__ void matmul_kernel(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const float* x,
                              const BlockQ8A* xq, float* y, int64_t ldy, bool accumulate) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t{blockIdx.x} * kWarps + threadIdx.x / 32;
  if (row >= rows) return;
  const int64_t i0 = int64_t{blockIdx.y} * kTok;
  const int nt = static_cast<int>(n - i0 < kTok ? n - i0 : kTok);
  const uint8_t* wrow = w + row * dtype_row_bytes(T, cols);
  float acc[kTok];
#pragma unroll
  for (int t = 0; t < kTok; ++t) acc[t] = 0.0f;

  if constexpr (T == DType::Q8 || T == DType::Q4) {
    const int64_t nb = (cols + 31) / 32;
    for (int64_t b = lane; b < nb; b += 32) {
      int wq[8];
      float wd;
      load_block<T>(wrow + b * dtype_block_bytes(T), wq, wd);
#pragma unroll
      for (int t = 0; t < kTok; ++t) {
        if (t >= nt) break;
        const BlockQ8A& a = xq[(i0 + t) * nb + b];
        const int2* aq = reinterpret_cast<const int2*>(a.qs);
        int s = 0;
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const int2 v = aq[k];
          s = __dp4a(wq[2 * k], v.x, s);
          s = __dp4a(wq[2 * k + 1], v.y, s);
        }
        if constexpr (T == DType::Q4) s -= 8 * a.sum;  // the code offset, once per block
        acc[t] += wd * a.d * static_cast<float>(s);
      }
    }
  } else {
    for (int64_t c = lane; c < cols; c += 32) {
      const float wv = load_elem<T>(wrow, c);
#pragma unroll
      for (int t = 0; t < kTok; ++t) {
        if (t >= nt) break;
        acc[t] += wv * x[(i0 + t) * cols + c];
      }
    }
  }
#pragma unroll
  for (int t = 0; t < kTok; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0 && t < nt) {
      float* out = y + (i0 + t) * ldy + row;
      *out = accumulate ? *out + s : s;
    }
  }
}

template <DType T>
void launch_matmul(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const float* x, const BlockQ8A* xq,
                   float* y, int64_t ldy, bool accumulate, cudaStream_t stream) {
  const unsigned grid_x = static_cast<unsigned>((rows + kWarps - 1) / kWarps);
  if (n == 1) {
    matmul_kernel<T, 1><<<dim3(grid_x, 1), kWarps * 32, 0, stream>>>(w, rows, cols, n, x, xq, y, ldy, accumulate);
  } else {
    constexpr int kTok = 8;
    const unsigned grid_y = static_cast<unsigned>((n + kTok - 1) / kTok);
    matmul_kernel<T, kTok><<<dim3(grid_x, grid_y), kWarps * 32, 0, stream>>>(w, rows, cols, n, x, xq, y, ldy,
                                                                             accumulate);
  }
  check_launch("matmul");
}

}  // namespace

void quantize_activations(const float* x, int64_t n, int64_t cols, BlockQ8A* xq, cudaStream_t stream) {
  const int64_t warps = n * ((cols + 31) / 32);
  constexpr int kThreads = 256;
  const auto grid = static_cast<unsigned>((warps * 32 + kThreads - 1) / kThreads);
  quantize_kernel<<<grid, kThreads, 0, stream>>>(x, n, cols, xq);
  check_launch("quantize_activations");
}

void matmul(DType t, const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const float* x, const BlockQ8A* xq,
            float* y, int64_t ldy, bool accumulate, cudaStream_t stream) {
  switch (t) {
    case DType::F32: return launch_matmul<DType::F32>(w, rows, cols, n, x, xq, y, ldy, accumulate, stream);
    case DType::F16: return launch_matmul<DType::F16>(w, rows, cols, n, x, xq, y, ldy, accumulate, stream);
    case DType::BF16: return launch_matmul<DType::BF16>(w, rows, cols, n, x, xq, y, ldy, accumulate, stream);
    case DType::Q8: return launch_matmul<DType::Q8>(w, rows, cols, n, x, xq, y, ldy, accumulate, stream);
    case DType::Q4: return launch_matmul<DType::Q4>(w, rows, cols, n, x, xq, y, ldy, accumulate, stream);
    default: break;  // CudaOffload refuses other types before upload
  }
  throw Error("CUDA matmul: unknown weight type");
}

}  // namespace qrun::cuda
