// Attention of one query head over f16 keys and values, in tiles with an online softmax
// (flash-attention style). One dispatched call per (token, head): the per-key work is
// a few vector ops, so per-key calls (and scalar f16 tails at head_dim 8) would cost
// more than the math. Vectors are as wide as head_dim allows, up to 16 lanes.
#include "simd/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/attention.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <cmath>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "simd/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace qrun {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

template <class D>
HWY_INLINE hn::Vec<D> LoadHalf(D d, const uint16_t* p) {
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}

// Scores of one tile -> exp(score - tile_max) in place, over whole vectors: the tile
// is padded with the maximum so the padding lanes are finite and unused.
HWY_INLINE void ExpTile(float* tile, int64_t n, float tile_max) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t padded = (n + N - 1) / N * N;
  std::fill(tile + n, tile + padded, tile_max);
  const auto vmax = hn::Set(df, tile_max);
  for (int64_t i = 0; i < padded; i += N) hn::StoreU(hn::Exp(df, hn::Sub(hn::LoadU(df, tile + i), vmax)), df, tile + i);
}

// head_dim must be a multiple of Lanes(d).
template <class D>
HWY_INLINE void Attend(D d, const float* q, const uint16_t* k, const uint16_t* v, int64_t stride, int64_t n_keys,
                       int64_t head_dim, float* out, float* tile, float scale, float softcap) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  if (scale == 0.0f) scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  float running_max = -std::numeric_limits<float>::infinity(), running_sum = 0.0f;
  for (int64_t j = 0; j < head_dim; j += N) hn::StoreU(hn::Zero(d), d, out + j);
  for (int64_t t0 = 0; t0 < n_keys; t0 += kAttentionTile) {
    const int64_t n = std::min<int64_t>(kAttentionTile, n_keys - t0);
    float tile_max = running_max;
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t* key = k + (t0 + i) * stride;
      auto acc = hn::Zero(d);
      for (int64_t j = 0; j < head_dim; j += N) acc = hn::MulAdd(hn::LoadU(d, q + j), LoadHalf(d, key + j), acc);
      tile[i] = hn::GetLane(hn::SumOfLanes(d, acc)) * scale;
      if (softcap > 0.0f) tile[i] = softcap * std::tanh(tile[i] / softcap);
      tile_max = std::max(tile_max, tile[i]);
    }
    ExpTile(tile, n, tile_max);
    // Rescale what was accumulated under the old maximum (exp(-inf) = 0 the first time).
    const float correction = std::exp(running_max - tile_max);
    if (correction != 1.0f) {
      const auto c = hn::Set(d, correction);
      for (int64_t j = 0; j < head_dim; j += N) hn::StoreU(hn::Mul(hn::LoadU(d, out + j), c), d, out + j);
      running_sum *= correction;
    }
    running_max = tile_max;
    for (int64_t i = 0; i < n; ++i) running_sum += tile[i];
    // Keys inner, in two register accumulators per output vector: with out[] updated
    // per key, its store-to-load chain took half of all attention time (pp512).
    for (int64_t j = 0; j < head_dim; j += N) {
      auto acc0 = hn::LoadU(d, out + j), acc1 = hn::Zero(d);
      int64_t i = 0;
      for (; i + 2 <= n; i += 2) {
        acc0 = hn::MulAdd(hn::Set(d, tile[i]), LoadHalf(d, v + (t0 + i) * stride + j), acc0);
        acc1 = hn::MulAdd(hn::Set(d, tile[i + 1]), LoadHalf(d, v + (t0 + i + 1) * stride + j), acc1);
      }
      if (i < n) acc0 = hn::MulAdd(hn::Set(d, tile[i]), LoadHalf(d, v + (t0 + i) * stride + j), acc0);
      hn::StoreU(hn::Add(acc0, acc1), d, out + j);
    }
  }
  if (running_sum > 0.0f) {
    const auto inv = hn::Set(d, 1.0f / running_sum);
    for (int64_t j = 0; j < head_dim; j += N) hn::StoreU(hn::Mul(hn::LoadU(d, out + j), inv), d, out + j);
  }
}

void AttendF16Impl(const float* q, const uint16_t* k, const uint16_t* v, int64_t stride, int64_t n_keys,
                   int64_t head_dim, float* out, float* tile, float scale, float softcap) {
  // CappedTag<float, C> has at most C lanes (fewer on narrow targets), and C divides
  // head_dim, so its lane count does too.
  if (head_dim % 16 == 0) return Attend(hn::CappedTag<float, 16>(), q, k, v, stride, n_keys, head_dim, out, tile, scale, softcap);
  if (head_dim % 8 == 0) return Attend(hn::CappedTag<float, 8>(), q, k, v, stride, n_keys, head_dim, out, tile, scale, softcap);
  if (head_dim % 4 == 0) return Attend(hn::CappedTag<float, 4>(), q, k, v, stride, n_keys, head_dim, out, tile, scale, softcap);
  Attend(hn::CappedTag<float, 1>(), q, k, v, stride, n_keys, head_dim, out, tile, scale, softcap);
}

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qrun {

HWY_EXPORT(AttendF16Impl);

void attend_f16(const float* q, const uint16_t* k, const uint16_t* v, int64_t stride, int64_t n_keys,
                int64_t head_dim, float* out, float* tile, float scale, float softcap) {
  HWY_DYNAMIC_DISPATCH(AttendF16Impl)(q, k, v, stride, n_keys, head_dim, out, tile, scale, softcap);
}

}  // namespace qrun
#endif  // HWY_ONCE
