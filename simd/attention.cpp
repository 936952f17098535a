// Attention of one query head over cached keys and values (f16 or q8_0), in tiles
// with an online softmax (flash-attention style). One dispatched call per (token, head): the per-key work is
// a few vector ops, so per-key calls (and scalar f16 tails at head_dim 8) would cost
// more than the math. Vectors are as wide as head_dim allows, up to 16 lanes.
#include "simd/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/attention.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <type_traits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "simd/kernels.h"

HWY_BEFORE_NAMESPACE();
namespace qrun {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// A row of f16: head_dim values; one group, no scale.
struct F16Row {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int64_t j, int64_t) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + j));
  }
  static HWY_INLINE float Scale(const uint8_t*, int64_t, int64_t) { return 1.0f; }
};

// A row of q8_0 blocks: per group of g values an f16 scale, then g int8 (the vector
// lanes divide g, so a load stays in one block).
struct Q8Row {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int64_t j, int64_t g) {
    const hn::RebindToSigned<D> di;
    const hn::Rebind<int8_t, D> d8;
    const int8_t* p = reinterpret_cast<const int8_t*>(row + j / g * (g + 2) + 2 + j % g);
    return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, p)));
  }
  // The scale of the group holding element j. F16 bits to f32 without F16C or a table:
  // the exponent and mantissa shifted into place and multiplied by 2^112 (rebiasing
  // 15 to 127 also makes subnormals normal); scales are finite, never Inf or NaN.
  static HWY_INLINE float Scale(const uint8_t* row, int64_t j, int64_t g) {
    const uint8_t* p = row + j / g * (g + 2);
    const uint32_t h = uint32_t{p[0]} | uint32_t{p[1]} << 8;
    const float magnitude = std::bit_cast<float>((h & 0x7FFFu) << 13) * 0x1p112f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | (h & 0x8000u) << 16);
  }
};

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

// q . K_t: per group of g values a sum in f32, times the group's scale (F16Row: one
// group, no scale).
template <class Row, class D>
HWY_INLINE float DotRow(D d, const float* q, const uint8_t* row, int64_t head_dim, int64_t g) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  auto acc = hn::Zero(d);
  if constexpr (std::is_same_v<Row, F16Row>) {
    for (int64_t j = 0; j < head_dim; j += N) acc = hn::MulAdd(hn::LoadU(d, q + j), Row::Load(d, row, j, g), acc);
  } else {
    for (int64_t j0 = 0; j0 < head_dim; j0 += g) {
      auto part = hn::Zero(d);
      for (int64_t j = j0; j < j0 + g; j += N) part = hn::MulAdd(hn::LoadU(d, q + j), Row::Load(d, row, j, g), part);
      acc = hn::MulAdd(part, hn::Set(d, Row::Scale(row, j0, g)), acc);
    }
  }
  return hn::GetLane(hn::SumOfLanes(d, acc));
}

// Lanes(d) divides g, g divides head_dim.
template <class KRow, class VRow, class D>
HWY_INLINE void Attend(D d, const float* q, const KvRows& k, const KvRows& v, int64_t n_keys, int64_t head_dim,
                       int64_t g, float* out, float* tile, float scale, float softcap) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  if (scale == 0.0f) scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  float running_max = -std::numeric_limits<float>::infinity(), running_sum = 0.0f;
  for (int64_t j = 0; j < head_dim; j += N) hn::StoreU(hn::Zero(d), d, out + j);
  float weights[kAttentionTile];  // a key's softmax weight times its value group's scale
  for (int64_t t0 = 0; t0 < n_keys; t0 += kAttentionTile) {
    const int64_t n = std::min<int64_t>(kAttentionTile, n_keys - t0);
    float tile_max = running_max;
    for (int64_t i = 0; i < n; ++i) {
      tile[i] = DotRow<KRow>(d, q, k.data + (t0 + i) * k.stride, head_dim, g) * scale;
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
    const uint8_t* values = v.data + t0 * v.stride;
    const int64_t vg = std::is_same_v<VRow, F16Row> ? head_dim : g;
    for (int64_t j0 = 0; j0 < head_dim; j0 += vg) {
      const float* w = tile;
      if constexpr (!std::is_same_v<VRow, F16Row>) {
        for (int64_t i = 0; i < n; ++i) weights[i] = tile[i] * VRow::Scale(values + i * v.stride, j0, g);
        w = weights;
      }
      // Keys inner, in two register accumulators per output vector: with out[] updated
      // per key, its store-to-load chain took half of all attention time (pp512).
      for (int64_t j = j0; j < j0 + vg; j += N) {
        auto acc0 = hn::LoadU(d, out + j), acc1 = hn::Zero(d);
        int64_t i = 0;
        for (; i + 2 <= n; i += 2) {
          acc0 = hn::MulAdd(hn::Set(d, w[i]), VRow::Load(d, values + i * v.stride, j, g), acc0);
          acc1 = hn::MulAdd(hn::Set(d, w[i + 1]), VRow::Load(d, values + (i + 1) * v.stride, j, g), acc1);
        }
        if (i < n) acc0 = hn::MulAdd(hn::Set(d, w[i]), VRow::Load(d, values + i * v.stride, j, g), acc0);
        hn::StoreU(hn::Add(acc0, acc1), d, out + j);
      }
    }
  }
  if (running_sum > 0.0f) {
    const auto inv = hn::Set(d, 1.0f / running_sum);
    for (int64_t j = 0; j < head_dim; j += N) hn::StoreU(hn::Mul(hn::LoadU(d, out + j), inv), d, out + j);
  }
}

template <class D>
HWY_INLINE void AttendRows(D d, const float* q, const KvRows& k, const KvRows& v, int64_t n_keys, int64_t head_dim,
                           int64_t g, float* out, float* tile, float scale, float softcap) {
  const bool k8 = k.type == KvType::Q8_0, v8 = v.type == KvType::Q8_0;
  if (k8 && v8) return Attend<Q8Row, Q8Row>(d, q, k, v, n_keys, head_dim, g, out, tile, scale, softcap);
  if (k8) return Attend<Q8Row, F16Row>(d, q, k, v, n_keys, head_dim, g, out, tile, scale, softcap);
  if (v8) return Attend<F16Row, Q8Row>(d, q, k, v, n_keys, head_dim, g, out, tile, scale, softcap);
  Attend<F16Row, F16Row>(d, q, k, v, n_keys, head_dim, g, out, tile, scale, softcap);
}

void AttendImpl(const float* q, const KvRows& k, const KvRows& v, int64_t n_keys, int64_t head_dim, float* out,
                float* tile, float scale, float softcap) {
  // CappedTag<float, C> has at most C lanes (fewer on narrow targets), and C divides
  // the width that must be whole vectors: a q8_0 group where either side has them,
  // else head_dim. So its lane count does too.
  const int64_t g = kv_group(static_cast<int>(head_dim));
  const int64_t whole = k.type == KvType::Q8_0 || v.type == KvType::Q8_0 ? g : head_dim;
  if (whole % 16 == 0) return AttendRows(hn::CappedTag<float, 16>(), q, k, v, n_keys, head_dim, g, out, tile, scale, softcap);
  if (whole % 8 == 0) return AttendRows(hn::CappedTag<float, 8>(), q, k, v, n_keys, head_dim, g, out, tile, scale, softcap);
  if (whole % 4 == 0) return AttendRows(hn::CappedTag<float, 4>(), q, k, v, n_keys, head_dim, g, out, tile, scale, softcap);
  AttendRows(hn::CappedTag<float, 1>(), q, k, v, n_keys, head_dim, g, out, tile, scale, softcap);
}

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qrun {

HWY_EXPORT(AttendImpl);

void attend(const float* q, const KvRows& k, const KvRows& v, int64_t n_keys, int64_t head_dim, float* out,
            float* tile, float scale, float softcap) {
  HWY_DYNAMIC_DISPATCH(AttendImpl)(q, k, v, n_keys, head_dim, out, tile, scale, softcap);
}

}  // namespace qrun
#endif  // HWY_ONCE
