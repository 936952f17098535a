// Per-target dot products of F32 / F16 / BF16 weight rows with f32 token vectors.
// Weights are widened to f32 on load (F16 via hardware conversion where Highway has
// it); each loaded weight vector is reused for up to kTokens tokens.

#if defined(QRUN_SIMD_FLOAT_TILES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QRUN_SIMD_FLOAT_TILES_INL_H_
#undef QRUN_SIMD_FLOAT_TILES_INL_H_
#else
#define QRUN_SIMD_FLOAT_TILES_INL_H_
#endif

#include <cstdint>

#include "hwy/highway.h"
#include "quant/quantize.h"
#include "simd/kernels.h"
#include "simd/prefetch-inl.h"

HWY_BEFORE_NAMESPACE();
namespace qrun {
namespace HWY_NAMESPACE {
namespace float_tiles {

namespace hn = hwy::HWY_NAMESPACE;

struct F32Row {
  using Elem = float;
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const Elem* p) { return hn::LoadU(d, p); }
  static HWY_INLINE float ToFloat(Elem v) { return v; }
};

struct F16Row {
  using Elem = uint16_t;
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const Elem* p) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  }
  static HWY_INLINE float ToFloat(Elem v) { return f16_to_f32(v); }
};

struct BF16Row {
  using Elem = uint16_t;
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const Elem* p) {
    const hn::Rebind<hwy::bfloat16_t, D> db;
    return hn::PromoteTo(d, hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(p)));
  }
  static HWY_INLINE float ToFloat(Elem v) { return bf16_to_f32(v); }
};

// *y = sum plus the scalar tail of dot(row, x) from column i on.
template <class Row>
HWY_INLINE void AddTail(float sum, const typename Row::Elem* row, int64_t i, int64_t cols, const float* x, float* y) {
  for (; i < cols; ++i) sum += Row::ToFloat(row[i]) * x[i];
  *y = sum;
}

// y[t * ldy] = dot(row, x + t * cols) for t < T (T <= 4). Two accumulators per token
// hide the FMA latency when T is small. They are named variables, not arrays: SVE
// vectors are sizeless types, which cannot be array elements.
template <class Row, int T>
HWY_INLINE void RowTile(const typename Row::Elem* row, int64_t cols, const float* x, float* y, int64_t ldy,
                        const PrefetchConfig& pf) {
  static_assert(1 <= T && T <= 4, "RowTile handles 1 to 4 tokens");
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto* bytes = reinterpret_cast<const char*>(row);
  constexpr int64_t kElemBytes = sizeof(typename Row::Elem);
  // a<t> and b<t>: token t's accumulators for the even and odd vectors of the row.
  auto a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
  auto b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  int64_t i = 0;
  for (; i + 2 * N <= cols; i += 2 * N) {
    // One prefetch per 64 bytes of row, as in the int8 kernels (simd/prefetch.h).
    const int64_t begin = i * kElemBytes, end = (i + 2 * N) * kElemBytes;
    for (int64_t b = (begin + 63) & ~int64_t{63}; b < end; b += 64) PrefetchRow(bytes + b + pf.distance, pf.level);
    const auto w0 = Row::Load(d, row + i);
    const auto w1 = Row::Load(d, row + i + N);
    const float* xi = x + i;
    a0 = hn::MulAdd(w0, hn::LoadU(d, xi), a0);
    b0 = hn::MulAdd(w1, hn::LoadU(d, xi + N), b0);
    if constexpr (T > 1) {
      a1 = hn::MulAdd(w0, hn::LoadU(d, xi + cols), a1);
      b1 = hn::MulAdd(w1, hn::LoadU(d, xi + cols + N), b1);
    }
    if constexpr (T > 2) {
      a2 = hn::MulAdd(w0, hn::LoadU(d, xi + 2 * cols), a2);
      b2 = hn::MulAdd(w1, hn::LoadU(d, xi + 2 * cols + N), b2);
    }
    if constexpr (T > 3) {
      a3 = hn::MulAdd(w0, hn::LoadU(d, xi + 3 * cols), a3);
      b3 = hn::MulAdd(w1, hn::LoadU(d, xi + 3 * cols + N), b3);
    }
  }
  for (; i + N <= cols; i += N) {
    const auto w0 = Row::Load(d, row + i);
    const float* xi = x + i;
    a0 = hn::MulAdd(w0, hn::LoadU(d, xi), a0);
    if constexpr (T > 1) a1 = hn::MulAdd(w0, hn::LoadU(d, xi + cols), a1);
    if constexpr (T > 2) a2 = hn::MulAdd(w0, hn::LoadU(d, xi + 2 * cols), a2);
    if constexpr (T > 3) a3 = hn::MulAdd(w0, hn::LoadU(d, xi + 3 * cols), a3);
  }
  AddTail<Row>(hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, b0))), row, i, cols, x, y);
  if constexpr (T > 1) AddTail<Row>(hn::GetLane(hn::SumOfLanes(d, hn::Add(a1, b1))), row, i, cols, x + cols, y + ldy);
  if constexpr (T > 2)
    AddTail<Row>(hn::GetLane(hn::SumOfLanes(d, hn::Add(a2, b2))), row, i, cols, x + 2 * cols, y + 2 * ldy);
  if constexpr (T > 3)
    AddTail<Row>(hn::GetLane(hn::SumOfLanes(d, hn::Add(a3, b3))), row, i, cols, x + 3 * cols, y + 3 * ldy);
}

inline constexpr int kTokens = qrun::kTileTokens;

template <class Row>
HWY_INLINE void MatMul(const void* w, int64_t rows, int64_t cols, int64_t n, const float* x, float* y,
                       int64_t ldy) {
  const auto* base = static_cast<const typename Row::Elem*>(w);
  const PrefetchConfig pf = prefetch_config_for(/*wide_rows=*/true);
  for (int64_t r = 0; r < rows; ++r) {
    const auto* row = base + r * cols;
    int64_t t = 0;
    for (; t + kTokens <= n; t += kTokens) RowTile<Row, kTokens>(row, cols, x + t * cols, y + t * ldy + r, ldy, pf);
    for (; t < n; ++t) RowTile<Row, 1>(row, cols, x + t * cols, y + t * ldy + r, ldy, pf);
  }
}

}  // namespace float_tiles
}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#endif  // include guard
