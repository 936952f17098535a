// quantize_activations: f32 -> BlockQ8A (per block of 32: d = absmax/127, int8 codes,
// and their sum); quantize_activations_i16 likewise to BlockQ16A. Computed exactly as
// their scalar twins (same float ops, round to nearest even) so both produce identical
// blocks.
#include "simd/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/activations.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cstring>

#include "hwy/highway.h"
#include "simd/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace qrun {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// Block b of x[n] (the tail block as a zero-padded copy in `padded`) and its largest |x|.
HWY_INLINE const float* BlockAndMax(const float* x, int64_t n, int64_t b, float* padded, float& amax) {
  const hn::CappedTag<float, 32> df;
  const float* xb = x + b * 32;
  const int64_t len = std::min<int64_t>(32, n - b * 32);
  if (len < 32) {
    std::fill(padded, padded + 32, 0.0f);
    std::memcpy(padded, xb, static_cast<size_t>(len) * sizeof(float));
    xb = padded;
  }
  auto vmax = hn::Zero(df);
  for (size_t i = 0; i < 32; i += hn::Lanes(df)) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + i)));
  amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
  return xb;
}

void QuantizeActivationsImpl(const float* x, int64_t n, BlockQ8A* out) {
  const hn::CappedTag<float, 32> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  HWY_ALIGN float padded[32];
  for (int64_t b = 0; b < q8a_blocks(n); ++b) {
    float amax;
    const float* xb = BlockAndMax(x, n, b, padded, amax);
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    BlockQ8A& o = out[b];
    o.d = amax / 127.0f;
    const auto vid = hn::Set(df, id);
    auto vsum = hn::Zero(di);
    for (size_t i = 0; i < 32; i += N) {
      const auto q = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + i), vid));  // |q| <= 127
      vsum = hn::Add(vsum, q);
      hn::StoreU(hn::DemoteTo(d8, q), d8, o.qs + i);
    }
    o.sum = hn::GetLane(hn::SumOfLanes(di, vsum));
  }
}

// As ref::quantize_activations_i16: the same float ops, then the split into bytes.
void QuantizeActivationsI16Impl(const float* x, int64_t n, BlockQ16A* out) {
  const hn::CappedTag<float, 32> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const size_t N = hn::Lanes(df);
  HWY_ALIGN float padded[32];
  for (int64_t b = 0; b < q8a_blocks(n); ++b) {
    float amax;
    const float* xb = BlockAndMax(x, n, b, padded, amax);
    const float id = amax > 0.0f ? 16256.0f / amax : 0.0f;
    BlockQ16A& o = out[b];
    o.d = amax / 16256.0f;
    const auto vid = hn::Set(df, id);
    auto vsum = hn::Zero(di);
    for (size_t i = 0; i < 32; i += N) {
      const auto q = hn::NearestInt(hn::Mul(hn::LoadU(df, xb + i), vid));  // |q| <= 16256
      const auto hi = hn::ShiftRight<7>(hn::Add(q, hn::Set(di, 64)));
      vsum = hn::Add(vsum, q);
      hn::StoreU(hn::DemoteTo(d8, hi), d8, o.hi + i);
      hn::StoreU(hn::DemoteTo(d8, hn::Sub(q, hn::ShiftLeft<7>(hi))), d8, o.lo + i);
    }
    o.sum = hn::GetLane(hn::SumOfLanes(di, vsum));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qrun {

HWY_EXPORT(QuantizeActivationsImpl);
HWY_EXPORT(QuantizeActivationsI16Impl);

void quantize_activations_i16(const float* x, int64_t n, BlockQ16A* out) {
  HWY_DYNAMIC_DISPATCH(QuantizeActivationsI16Impl)(x, n, out);
}

void quantize_activations(const float* x, int64_t n, BlockQ8A* out) {
  HWY_DYNAMIC_DISPATCH(QuantizeActivationsImpl)(x, n, out);
}

}  // namespace qrun
#endif  // HWY_ONCE
