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

// y[t * ldy] = dot(row, x + t * cols) for t < T. Two accumulators per token hide the
// FMA latency when T is small.
template <class Row, int T>
HWY_INLINE void RowTile(const typename Row::Elem* row, int64_t cols, const float* x, float* y, int64_t ldy) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  hn::Vec<decltype(d)> acc0[T], acc1[T];
  for (int t = 0; t < T; ++t) acc0[t] = acc1[t] = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= cols; i += 2 * N) {
    const auto w0 = Row::Load(d, row + i);
    const auto w1 = Row::Load(d, row + i + N);
    for (int t = 0; t < T; ++t) {
      acc0[t] = hn::MulAdd(w0, hn::LoadU(d, x + t * cols + i), acc0[t]);
      acc1[t] = hn::MulAdd(w1, hn::LoadU(d, x + t * cols + i + N), acc1[t]);
    }
  }
  for (; i + N <= cols; i += N) {
    const auto w0 = Row::Load(d, row + i);
    for (int t = 0; t < T; ++t) acc0[t] = hn::MulAdd(w0, hn::LoadU(d, x + t * cols + i), acc0[t]);
  }
  for (int t = 0; t < T; ++t) {
    float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0[t], acc1[t])));
    for (int64_t j = i; j < cols; ++j) sum += Row::ToFloat(row[j]) * x[t * cols + j];
    y[t * ldy] = sum;
  }
}

inline constexpr int kTokens = 4;

template <class Row>
HWY_INLINE void MatMul(const void* w, int64_t rows, int64_t cols, int64_t n, const float* x, float* y,
                       int64_t ldy) {
  const auto* base = static_cast<const typename Row::Elem*>(w);
  for (int64_t r = 0; r < rows; ++r) {
    const auto* row = base + r * cols;
    int64_t t = 0;
    for (; t + kTokens <= n; t += kTokens) RowTile<Row, kTokens>(row, cols, x + t * cols, y + t * ldy + r, ldy);
    for (; t < n; ++t) RowTile<Row, 1>(row, cols, x + t * cols, y + t * ldy + r, ldy);
  }
}

}  // namespace float_tiles
}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#endif  // include guard
