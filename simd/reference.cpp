// Scalar twins of the SIMD kernels. Written for obviousness, not speed: the int8 paths
// sum exact integer products per block exactly as the SIMD kernels must, and float
// reductions accumulate in double so the reference is the more accurate side.
#include "simd/reference.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "quant/block_formats.h"
#include "quant/quantize.h"

namespace qrun::ref {

namespace {

// Integer dot of one weight block with one activation block, then scaled.
template <class BlockView>
float block_dot(const BlockView& w, const BlockQ8A& a) {
  int32_t sum = 0;
  for (int j = 0; j < 32; ++j) sum += block_value(w, j) * a.qs[j];
  return f16_to_f32(w.d) * a.d * static_cast<float>(sum);
}

template <class Block>
double blocks_dot(const uint8_t* row, int64_t nb, const BlockQ8A* xq) {
  double acc = 0.0;
  for (int64_t b = 0; b < nb; ++b) acc += block_dot(row_block<Block>(row, nb, b), xq[b]);
  return acc;
}

// Q2K: run b of 32 is elements 32 (b % 8) .. of super-block b / 8; the scaled codes
// and the minimums make two integer sums with their own f16 step.
double q2k_blocks_dot(const uint8_t* row, int64_t nb, const BlockQ8A* xq) {
  const auto* w = reinterpret_cast<const BlockQ2K*>(row);
  double acc = 0.0;
  for (int64_t b = 0; b < nb; ++b) {
    const BlockQ2K& s = w[b / 8];
    const BlockQ8A& a = xq[b];
    int32_t scaled = 0, mins = 0;
    for (int j = 0; j < 32; ++j) {
      const int e = static_cast<int>(b % 8) * 32 + j;
      scaled += q2k_scale(s, e) * q2k_code(s, e) * a.qs[j];
      mins += q2k_min(s, e) * a.qs[j];
    }
    acc += a.d * (f16_to_f32(s.d) * static_cast<float>(scaled) - f16_to_f32(s.dmin) * static_cast<float>(mins));
  }
  return acc;
}

float row_dot(DType t, const uint8_t* row, int64_t cols, const float* x, const BlockQ8A* xq) {
  const int64_t nb = q8a_blocks(cols);
  double acc = 0.0;
  switch (t) {
    case DType::F32: {
      const auto* w = reinterpret_cast<const float*>(row);
      for (int64_t i = 0; i < cols; ++i) acc += static_cast<double>(w[i]) * x[i];
      break;
    }
    case DType::F16: {
      const auto* w = reinterpret_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < cols; ++i) acc += static_cast<double>(f16_to_f32(w[i])) * x[i];
      break;
    }
    case DType::BF16: {
      const auto* w = reinterpret_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < cols; ++i) acc += static_cast<double>(bf16_to_f32(w[i])) * x[i];
      break;
    }
    case DType::Q8: return static_cast<float>(blocks_dot<BlockQ8>(row, nb, xq));
    case DType::Q4: return static_cast<float>(blocks_dot<BlockQ4>(row, nb, xq));
    case DType::Q4N: return static_cast<float>(blocks_dot<BlockQ4N>(row, nb, xq));
    case DType::Mx4: return static_cast<float>(blocks_dot<BlockMx4>(row, nb, xq));
    case DType::Q6: return static_cast<float>(blocks_dot<BlockQ6>(row, nb, xq));
    case DType::Q5: return static_cast<float>(blocks_dot<BlockQ5>(row, nb, xq));
    case DType::Q3: return static_cast<float>(blocks_dot<BlockQ3>(row, nb, xq));
    case DType::Q2K: return static_cast<float>(q2k_blocks_dot(row, nb, xq));
  }
  return static_cast<float>(acc);
}

// Element j of a cached row: f16, or the scale of j's group times its int8 (q8_0) or its
// 4-bit code less 8 (q4_0).
double kv_element(const KvRows& rows, int64_t t, int64_t j, int64_t head_dim) {
  const uint8_t* row = rows.data + t * rows.stride;
  uint16_t h;
  if (rows.type == KvType::F16) {
    std::copy_n(row + 2 * j, 2, reinterpret_cast<uint8_t*>(&h));
    return f16_to_f32(h);
  }
  const int64_t g = kv_group(static_cast<int>(head_dim)), i = j % g;
  const uint8_t* block = row + j / g * kv_block_bytes(rows.type, int(g));
  std::copy_n(block, 2, reinterpret_cast<uint8_t*>(&h));
  if (rows.type == KvType::Q8_0) return double(f16_to_f32(h)) * static_cast<int8_t>(block[2 + i]);
  const int byte = block[2 + i % (g / 2)], code = i < g / 2 ? byte & 15 : byte >> 4;
  if (rows.type == KvType::IQ4_NL) return double(f16_to_f32(h)) * kQ4NLevels[code];
  return double(f16_to_f32(h)) * (code - 8);
}

}  // namespace

void quantize_activations(const float* x, int64_t n, BlockQ8A* out) {
  for (int64_t b = 0; b < q8a_blocks(n); ++b) {
    const int64_t len = std::min<int64_t>(32, n - b * 32);
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int64_t j = 0; j < len; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d > 0.0f ? 127.0f / amax : 0.0f;
    BlockQ8A& o = out[b];
    o.d = d;
    o.sum = 0;
    for (int j = 0; j < 32; ++j) {
      const float v = j < len ? xb[j] * id : 0.0f;
      o.qs[j] = static_cast<int8_t>(std::clamp(std::nearbyint(v), -127.0f, 127.0f));
      o.sum += o.qs[j];
    }
  }
}

void quantize_activations_i16(const float* x, int64_t n, BlockQ16A* out) {
  for (int64_t b = 0; b < q8a_blocks(n); ++b) {
    const int64_t len = std::min<int64_t>(32, n - b * 32);
    const float* xb = x + b * 32;
    float amax = 0.0f;
    for (int64_t j = 0; j < len; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float id = amax > 0.0f ? 16256.0f / amax : 0.0f;  // 16256 = 127 * 128
    BlockQ16A& o = out[b];
    o.d = amax / 16256.0f;
    o.sum = 0;
    for (int j = 0; j < 32; ++j) {
      const float v = j < len ? xb[j] * id : 0.0f;
      const auto q = static_cast<int32_t>(std::clamp(std::nearbyint(v), -16256.0f, 16256.0f));
      const int32_t hi = (q + 64) >> 7;  // floor: lo = q - 128 * hi lands in [-64, 63]
      o.hi[j] = static_cast<int8_t>(hi);
      o.lo[j] = static_cast<int8_t>(q - 128 * hi);
      o.sum += q;
    }
  }
}

void matmul_i16(const void* w, int64_t rows, int64_t cols, int64_t n, const BlockQ16A* xq, float* y, int64_t ldy) {
  const int64_t nb = q8a_blocks(cols);
  const auto* blocks = static_cast<const BlockQ8*>(w);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (int64_t b = 0; b < nb; ++b) {
        const BlockQ8& wb = blocks[r * nb + b];
        const BlockQ16A& a = xq[i * nb + b];
        int32_t sum = 0;
        for (int j = 0; j < 32; ++j) sum += wb.qs[j] * (128 * a.hi[j] + a.lo[j]);
        acc += f16_to_f32(wb.d) * a.d * static_cast<float>(sum);
      }
      y[i * ldy + r] = static_cast<float>(acc);
    }
  }
}

void matvec(DType t, const void* w, int64_t rows, int64_t cols, const float* x, const BlockQ8A* xq,
            float* y) {
  const auto* base = static_cast<const uint8_t*>(w);
  const int64_t row_bytes = dtype_row_bytes(t, cols);
  for (int64_t r = 0; r < rows; ++r) y[r] = row_dot(t, base + r * row_bytes, cols, x, xq);
}

void matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x,
            const BlockQ8A* xq, float* y, int64_t ldy) {
  const int64_t nb = q8a_blocks(cols);
  for (int64_t i = 0; i < n; ++i) {
    ref::matvec(t, w, rows, cols, x ? x + i * cols : nullptr, xq ? xq + i * nb : nullptr, y + i * ldy);
  }
}

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

float dot_f32(const float* a, const float* b, int64_t n) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(acc);
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void geglu_tanh(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    gate[i] = static_cast<float>(0.5 * g * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g))) * up[i]);
  }
}

void swiglu_clamped(float* gate, const float* up, int64_t n, float limit) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = std::min(gate[i], limit), u = std::clamp(up[i], -limit, limit);
    gate[i] = static_cast<float>(g / (1.0 + std::exp(-1.702 * g)) * (u + 1.0));
  }
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  const float mx = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}


void attend(const AttendArgs& a) {
  const int64_t hd = a.head_dim;
  for (int64_t h = 0; h < a.heads; ++h) {
    const float* q = a.q + h * hd;
    std::vector<double> s(static_cast<size_t>(a.n_keys));
    double mx = -1e300;
    for (int64_t t = 0; t < a.n_keys; ++t) {
      double dot = 0;
      for (int64_t j = 0; j < hd; ++j) dot += double(q[j]) * kv_element(a.k, t, j, hd);
      s[size_t(t)] = a.scale > 0 ? dot * a.scale : dot / std::sqrt(double(hd));
      if (a.softcap > 0) s[size_t(t)] = a.softcap * std::tanh(s[size_t(t)] / a.softcap);
      mx = std::max(mx, s[size_t(t)]);
    }
    if (a.sinks) mx = std::max(mx, double(a.sinks[h]));
    double z = a.sinks ? std::exp(a.sinks[h] - mx) : 0.0;
    for (auto& e : s) z += (e = std::exp(e - mx));
    for (int64_t j = 0; j < hd; ++j) {
      double acc = 0;
      for (int64_t t = 0; t < a.n_keys; ++t) acc += s[size_t(t)] * kv_element(a.v, t, j, hd);
      a.out[h * hd + j] = static_cast<float>(acc / z);
    }
  }
}

}  // namespace qrun::ref
