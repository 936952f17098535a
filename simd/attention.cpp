// Attention over cached keys and values (f16, q8_0, q4_0 or iq4_nl), in tiles with an online softmax
// (flash-attention style). One dispatched call per (token, query heads that share a KV
// head): the per-key work is a few vector ops, so per-key calls (and scalar f16 tails at
// head_dim 8) would cost more than the math. Vectors are as wide as head_dim allows, up
// to 16 lanes.
#include "simd/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/attention.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "quant/block_formats.h"
#include "simd/kernels.h"
#include "simd/prefetch-inl.h"

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
  template <class D>
  static HWY_INLINE hn::Vec<D> LoadScaled(D d, const uint8_t* row, int64_t j, int64_t g) {
    return Load(d, row, j, g);
  }
};

// Rows of blocks, each group of g values an f16 scale and then its codes (Codes: q8_0 or
// q4_0 below).
template <class Codes>
struct BlockRow {
  // The block holding element j: its f16 scale, then its codes.
  static HWY_INLINE const uint8_t* Block(const uint8_t* row, int64_t j, int64_t g) {
    return row + j / g * Codes::BlockBytes(g);
  }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int64_t j, int64_t g) {
    return Codes::Load(d, Block(row, j, g) + 2, j % g, g);
  }
  // The scale of the group holding element j. F16 bits to f32 without F16C or a table:
  // the exponent and mantissa shifted into place and multiplied by 2^112 (rebiasing
  // 15 to 127 also makes subnormals normal); scales are finite, never Inf or NaN.
  static HWY_INLINE float Scale(const uint8_t* row, int64_t j, int64_t g) {
    const uint8_t* p = Block(row, j, g);
    const uint32_t h = uint32_t{p[0]} | uint32_t{p[1]} << 8;
    const float magnitude = std::bit_cast<float>((h & 0x7FFFu) << 13) * 0x1p112f;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | (h & 0x8000u) << 16);
  }
  // d * (code - bias) as one multiply-add of the unbiased codes.
  template <class D>
  static HWY_INLINE hn::Vec<D> LoadScaled(D d, const uint8_t* row, int64_t j, int64_t g) {
    const float scale = Scale(row, j, g);
    const auto codes = Codes::LoadUnbiased(d, Block(row, j, g) + 2, j % g, g);
    if constexpr (Codes::kBias == 0) return hn::Mul(codes, hn::Set(d, scale));
    return hn::MulAdd(codes, hn::Set(d, scale), hn::Set(d, -Codes::kBias * scale));
  }
};

// q8_0: g int8 after the scale (the vector lanes divide g, so a load stays in one block).
struct Q8Codes {
  static constexpr int64_t BlockBytes(int64_t g) { return 2 + g; }
  static constexpr float kBias = 0.0f;
  template <class D>
  static HWY_INLINE hn::Vec<D> LoadUnbiased(D d, const uint8_t* codes, int64_t i, int64_t) {
    const hn::RebindToSigned<D> di;
    const hn::Rebind<int8_t, D> d8;
    return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const int8_t*>(codes) + i)));
  }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* codes, int64_t i, int64_t g) {
    return LoadUnbiased(d, codes, i, g);
  }
};

// q4_0: g / 2 bytes after the scale, value i in byte i's low half and value i + g / 2 in
// its high half, each code less 8 (the lanes divide g / 2, so a load takes one half).
struct Q4Codes {
  static constexpr int64_t BlockBytes(int64_t g) { return 2 + g / 2; }
  static constexpr float kBias = 8.0f;
  template <class D>
  static HWY_INLINE hn::Vec<D> LoadUnbiased(D d, const uint8_t* codes, int64_t i, int64_t g) {
    const hn::RebindToSigned<D> di;
    const hn::Rebind<uint8_t, D> d8;
    const int64_t half = g / 2;
    const auto bytes = hn::BitCast(di, hn::PromoteTo(hn::RebindToUnsigned<D>(), hn::LoadU(d8, codes + i % half)));
    return hn::ConvertTo(d, i < half ? hn::And(bytes, hn::Set(di, 15)) : hn::ShiftRight<4>(bytes));
  }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* codes, int64_t i, int64_t g) {
    return hn::Sub(LoadUnbiased(d, codes, i, g), hn::Set(d, kBias));
  }
};

// iq4_nl: q4_0's layout, each code indexing the non-uniform levels kQ4NLevels: one byte
// table lookup per load (the lanes' codes are at most 16 bytes, one 128-bit block).
struct Iq4nlCodes {
  static constexpr int64_t BlockBytes(int64_t g) { return 2 + g / 2; }
  static constexpr float kBias = 0.0f;
  template <class D>
  static HWY_INLINE hn::Vec<D> LoadUnbiased(D d, const uint8_t* codes, int64_t i, int64_t g) {
    const int64_t half = g / 2;
#if HWY_TARGET == HWY_SCALAR  // one-lane vectors: the table does not fit one
    const int byte = codes[i % half];
    return hn::Set(d, static_cast<float>(kQ4NLevels[i < half ? byte & 15 : byte >> 4]));
#else
    const hn::Rebind<uint8_t, D> d8;
    const auto bytes = hn::LoadU(d8, codes + i % half);
    const auto index = i < half ? hn::And(bytes, hn::Set(d8, 15)) : hn::ShiftRight<4>(bytes);
    const hn::CappedTag<uint8_t, 16> d_table;
    const auto levels = hn::TableLookupBytes(hn::LoadU(d_table, reinterpret_cast<const uint8_t*>(kQ4NLevels)), index);
    const hn::RebindToSigned<D> di;
    return hn::ConvertTo(d, hn::PromoteTo(di, hn::BitCast(hn::Rebind<int8_t, D>(), levels)));
#endif
  }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* codes, int64_t i, int64_t g) {
    return LoadUnbiased(d, codes, i, g);
  }
};

using Q8Row = BlockRow<Q8Codes>;
using Q4Row = BlockRow<Q4Codes>;
using Iq4nlRow = BlockRow<Iq4nlCodes>;

// Keys the scoring loop prefetches ahead of the one it reads (Zen 4, tinyllama q4 decode
// after 2,048 tokens, two threads, f16 cache: 36-37 tok/s without, 40-45 with 4, 8 or 16
// ahead alike within the VM's noise; README, Speed).
inline constexpr int64_t kPrefetchKeys = 8;

// Every 64-byte line of `bytes` from p, into L1 (the kernels' PrefetchRow).
HWY_INLINE void PrefetchLines(const uint8_t* p, int64_t bytes) {
  for (int64_t b = 0; b < bytes; b += 64) PrefetchRow(p + b, PrefetchLevel::L1);
}

// Scores of one tile -> exp(score - tile_max) in place, over whole vectors (the tile
// is padded with the maximum so the padding lanes are finite and unused); returns the
// sum of tile[0, n), added in vectors as they are made (a scalar add per key was a
// dependency chain of n adds per head and tile). Keys past a row's end hold +0, which
// leaves every lane's sum as it was, so a row's sum has the same bits with them as
// without.
HWY_INLINE float ExpTile(float* tile, int64_t n, float tile_max) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t padded = (n + N - 1) / N * N;
  std::fill(tile + n, tile + padded, tile_max);
  const auto vmax = hn::Set(df, tile_max);
  auto sum = hn::Zero(df);
  for (int64_t i = 0; i < padded; i += N) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, tile + i), vmax));
    hn::StoreU(e, df, tile + i);
    if (i + N <= n) {
      sum = hn::Add(sum, e);
    } else {
      sum = hn::Add(sum, hn::IfThenElseZero(hn::FirstN(df, static_cast<size_t>(n - i)), e));
    }
  }
  return hn::GetLane(hn::SumOfLanes(df, sum));
}

// For `heads` query heads (q_h = q + h * head_dim), the products q_h * key summed over
// head_dim down to one vector, stored at v + h * head_stride (LaneSums takes it from
// there). Four heads per pass share each load of the key and run independent FMA
// chains. Every row sums its even and its odd vectors apart, then both, however many
// rows share the call: a prompt token's scores are the same bits whether its rows come
// alone or with other tokens'.
template <class Row, class D>
HWY_INLINE void KeyProducts(D d, const float* q, int64_t heads, const uint8_t* key, int64_t hd, int64_t g, float* v,
                            int64_t head_stride) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t h = 0;
  for (; h + 4 <= heads; h += 4) {
    const float* q0 = q + h * hd;
    // Fixed indices only, so that the eight chains stay in registers.
    auto e0 = hn::Zero(d), e1 = hn::Zero(d), e2 = hn::Zero(d), e3 = hn::Zero(d);
    auto o0 = hn::Zero(d), o1 = hn::Zero(d), o2 = hn::Zero(d), o3 = hn::Zero(d);
    int64_t j = 0;
    for (; j + 2 * N <= hd; j += 2 * N) {
      const auto k = Row::LoadScaled(d, key, j, g), k1 = Row::LoadScaled(d, key, j + N, g);
      e0 = hn::MulAdd(hn::LoadU(d, q0 + j), k, e0);
      e1 = hn::MulAdd(hn::LoadU(d, q0 + hd + j), k, e1);
      e2 = hn::MulAdd(hn::LoadU(d, q0 + 2 * hd + j), k, e2);
      e3 = hn::MulAdd(hn::LoadU(d, q0 + 3 * hd + j), k, e3);
      o0 = hn::MulAdd(hn::LoadU(d, q0 + j + N), k1, o0);
      o1 = hn::MulAdd(hn::LoadU(d, q0 + hd + j + N), k1, o1);
      o2 = hn::MulAdd(hn::LoadU(d, q0 + 2 * hd + j + N), k1, o2);
      o3 = hn::MulAdd(hn::LoadU(d, q0 + 3 * hd + j + N), k1, o3);
    }
    if (j < hd) {
      const auto k = Row::LoadScaled(d, key, j, g);
      e0 = hn::MulAdd(hn::LoadU(d, q0 + j), k, e0);
      e1 = hn::MulAdd(hn::LoadU(d, q0 + hd + j), k, e1);
      e2 = hn::MulAdd(hn::LoadU(d, q0 + 2 * hd + j), k, e2);
      e3 = hn::MulAdd(hn::LoadU(d, q0 + 3 * hd + j), k, e3);
    }
    hn::StoreU(hn::Add(e0, o0), d, v + h * head_stride);
    hn::StoreU(hn::Add(e1, o1), d, v + (h + 1) * head_stride);
    hn::StoreU(hn::Add(e2, o2), d, v + (h + 2) * head_stride);
    hn::StoreU(hn::Add(e3, o3), d, v + (h + 3) * head_stride);
  }
  for (; h < heads; ++h) {
    auto a0 = hn::Zero(d), a1 = hn::Zero(d);
    int64_t j = 0;
    for (; j + 2 * N <= hd; j += 2 * N) {
      a0 = hn::MulAdd(hn::LoadU(d, q + h * hd + j), Row::LoadScaled(d, key, j, g), a0);
      a1 = hn::MulAdd(hn::LoadU(d, q + h * hd + j + N), Row::LoadScaled(d, key, j + N, g), a1);
    }
    if (j < hd) a0 = hn::MulAdd(hn::LoadU(d, q + h * hd + j), Row::LoadScaled(d, key, j, g), a0);
    hn::StoreU(hn::Add(a0, a1), d, v + h * head_stride);
  }
}

// The lane sums of the N vectors at v (N = Lanes(d), one after another; overwritten),
// vector k's in lane k. Each step adds neighbouring lanes of two vectors, a to the lower
// half of the result and b to the upper (LoadInterleaved2 of a then b: its even lanes
// plus its odd ones), so N - 1 steps leave the N sums in order, where one reduction per
// vector took log2(N) shuffles and adds for one sum. A vector's lanes are added in the
// same tree whatever the others hold.
template <class D>
HWY_INLINE hn::Vec<D> LaneSums(D d, float* v) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  if constexpr (hn::MaxLanes(D()) > 1) {
    for (int64_t m = N; m > 1; m /= 2) {
      for (int64_t i = 0; i < m / 2; ++i) {
        hn::Vec<D> even, odd;
        hn::LoadInterleaved2(d, v + 2 * i * N, even, odd);
        hn::StoreU(hn::Add(even, odd), d, v + i * N);
      }
    }
  }
  return hn::LoadU(d, v);
}

// out_h += sum_i w_h[i] V_i over a tile of n value rows, for every head: w_h is the
// head's tile of softmax weights, times the value group's scale for q8_0 and q4_0. Four heads per
// pass share each load of a value vector and run four FMA chains; keys inner, so out is
// read and written once per tile (with out[] updated per key, its store-to-load chain
// took half of all attention time, pp512).
template <class Row, class D>
HWY_NOINLINE void AddValues(D d, const AttendArgs& a, const uint8_t* values, int64_t n, int64_t g) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), hd = a.head_dim, stride = a.v.stride;
  const int64_t vg = std::is_same_v<Row, F16Row> ? hd : g;  // widths that share one scale
  float scaled[kMaxAttendHeads * kAttentionTile];
  for (int64_t j0 = 0; j0 < hd; j0 += vg) {
    const float* w = a.tile;
    if constexpr (!std::is_same_v<Row, F16Row>) {
      for (int64_t i = 0; i < n; ++i) {
        const float scale = Row::Scale(values + i * stride, j0, g);
        for (int64_t h = 0; h < a.heads; ++h) scaled[h * kAttentionTile + i] = a.tile[h * kAttentionTile + i] * scale;
      }
      w = scaled;
    }
    int64_t h = 0;
    for (; h + 4 <= a.heads; h += 4) {  // even and odd keys in chains apart, as one head's below
      const float* w0 = w + h * kAttentionTile;
      float* out = a.out + h * hd;
      for (int64_t j = j0; j < j0 + vg; j += N) {
        auto e0 = hn::LoadU(d, out + j), e1 = hn::LoadU(d, out + hd + j);
        auto e2 = hn::LoadU(d, out + 2 * hd + j), e3 = hn::LoadU(d, out + 3 * hd + j);
        auto o0 = hn::Zero(d), o1 = hn::Zero(d), o2 = hn::Zero(d), o3 = hn::Zero(d);
        const float* w1 = w0 + kAttentionTile;
        const float* w2 = w0 + 2 * kAttentionTile;
        const float* w3 = w0 + 3 * kAttentionTile;
        int64_t i = 0;
        for (; i + 2 <= n; i += 2) {
          const auto v = Row::Load(d, values + i * stride, j, g), v1 = Row::Load(d, values + (i + 1) * stride, j, g);
          e0 = hn::MulAdd(hn::Set(d, w0[i]), v, e0);
          e1 = hn::MulAdd(hn::Set(d, w1[i]), v, e1);
          e2 = hn::MulAdd(hn::Set(d, w2[i]), v, e2);
          e3 = hn::MulAdd(hn::Set(d, w3[i]), v, e3);
          o0 = hn::MulAdd(hn::Set(d, w0[i + 1]), v1, o0);
          o1 = hn::MulAdd(hn::Set(d, w1[i + 1]), v1, o1);
          o2 = hn::MulAdd(hn::Set(d, w2[i + 1]), v1, o2);
          o3 = hn::MulAdd(hn::Set(d, w3[i + 1]), v1, o3);
        }
        if (i < n) {
          const auto v = Row::Load(d, values + i * stride, j, g);
          e0 = hn::MulAdd(hn::Set(d, w0[i]), v, e0);
          e1 = hn::MulAdd(hn::Set(d, w1[i]), v, e1);
          e2 = hn::MulAdd(hn::Set(d, w2[i]), v, e2);
          e3 = hn::MulAdd(hn::Set(d, w3[i]), v, e3);
        }
        hn::StoreU(hn::Add(e0, o0), d, out + j);
        hn::StoreU(hn::Add(e1, o1), d, out + hd + j);
        hn::StoreU(hn::Add(e2, o2), d, out + 2 * hd + j);
        hn::StoreU(hn::Add(e3, o3), d, out + 3 * hd + j);
      }
    }
    for (; h < a.heads; ++h) {  // one head, in two accumulators
      const float* wh = w + h * kAttentionTile;
      float* out = a.out + h * hd;
      for (int64_t j = j0; j < j0 + vg; j += N) {
        auto acc0 = hn::LoadU(d, out + j), acc1 = hn::Zero(d);
        int64_t i = 0;
        for (; i + 2 <= n; i += 2) {
          acc0 = hn::MulAdd(hn::Set(d, wh[i]), Row::Load(d, values + i * stride, j, g), acc0);
          acc1 = hn::MulAdd(hn::Set(d, wh[i + 1]), Row::Load(d, values + (i + 1) * stride, j, g), acc1);
        }
        if (i < n) acc0 = hn::MulAdd(hn::Set(d, wh[i]), Row::Load(d, values + i * stride, j, g), acc0);
        hn::StoreU(hn::Add(acc0, acc1), d, out + j);
      }
    }
  }
}

// Scores of keys [t0, t0 + n) into each head's row of a.tile, scaled, capped and masked;
// tile_max[h] rises to the head's largest. Keys go by N (a vector's lanes) at a time:
// their products, then per head one vector of N scores (LaneSums). Each key row is read
// from memory once for all the heads. The rows are a head's slice of each cache row,
// too sparse for the hardware prefetchers to run ahead: fetch the keys kPrefetchKeys
// ahead, and this tile's values while scoring it.
template <class Row, class D>
HWY_NOINLINE void ScoreTile(D d, const AttendArgs& a, int64_t t0, int64_t n, int64_t g, float scale, float* tile_max) {
  const int64_t hd = a.head_dim, heads = a.heads, N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t key_bytes = kv_row_bytes(a.k.type, int(hd), int(hd)), value_bytes = kv_row_bytes(a.v.type, int(hd), int(hd));
  constexpr int64_t kMaxLanes = hn::MaxLanes(D());
  float products[kMaxAttendHeads * kMaxLanes * kMaxLanes];  // head h, key i: products + (h * N + i) * N
  const auto minus_inf = hn::Set(d, -std::numeric_limits<float>::infinity());
  for (int64_t i0 = 0; i0 < n; i0 += N) {
    const int64_t m = std::min(N, n - i0);
    for (int64_t i = 0; i < N; ++i) {
      const int64_t t = t0 + i0 + i;
      if (i >= m) {  // past the tile: zeros, masked below
        for (int64_t h = 0; h < heads; ++h) hn::StoreU(hn::Zero(d), d, products + (h * N + i) * N);
        continue;
      }
      if (const int64_t ahead = t + kPrefetchKeys; ahead < a.n_keys) PrefetchLines(a.k.data + ahead * a.k.stride, key_bytes);
      PrefetchLines(a.v.data + t * a.v.stride, value_bytes);
      KeyProducts<Row>(d, a.q, heads, a.k.data + t * a.k.stride, hd, g, products + i * N, N * N);
    }
    for (int64_t h = 0; h < heads; ++h) {
      auto s = hn::Mul(LaneSums(d, products + h * N * N), hn::Set(d, scale));
      float* out = a.tile + h * kAttentionTile + i0;
      if (a.softcap > 0.0f) {
        hn::StoreU(s, d, out);
        for (int64_t i = 0; i < m; ++i) out[i] = a.softcap * std::tanh(out[i] / a.softcap);
        s = hn::LoadU(d, out);
      }
      // A key past the tile or past the row's end weighs exp(-inf) = 0; every row sees
      // key 0, so its running maximum is finite from the first tile on.
      const int64_t end = a.key_ends ? std::min(a.key_ends[h] - (t0 + i0), m) : m;
      s = hn::IfThenElse(hn::FirstN(d, static_cast<size_t>(std::max<int64_t>(end, 0))), s, minus_inf);
      hn::StoreU(s, d, out);
      tile_max[h] = std::max(tile_max[h], hn::GetLane(hn::MaxOfLanes(d, s)));
    }
  }
}

// Lanes(d) divides g, g divides head_dim. The per-tile phases are functions of their
// own, one per cache type: inlined into one body per (key type, value type, width),
// this file took GCC 400 s to compile.
template <class D>
HWY_NOINLINE void Attend(D d, const AttendArgs& a, int64_t g) {
  const int64_t N = static_cast<int64_t>(hn::Lanes(d)), hd = a.head_dim, heads = a.heads;
  const float scale = a.scale == 0.0f ? 1.0f / std::sqrt(static_cast<float>(hd)) : a.scale;
  float running_max[kMaxAttendHeads], running_sum[kMaxAttendHeads];
  for (int64_t h = 0; h < heads; ++h) {
    running_max[h] = -std::numeric_limits<float>::infinity();
    running_sum[h] = 0.0f;
    for (int64_t j = 0; j < hd; j += N) hn::StoreU(hn::Zero(d), d, a.out + h * hd + j);
  }
  for (int64_t t0 = 0; t0 < a.n_keys; t0 += kAttentionTile) {
    const int64_t n = std::min<int64_t>(kAttentionTile, a.n_keys - t0);
    float tile_max[kMaxAttendHeads];
    std::copy_n(running_max, heads, tile_max);
    switch (a.k.type) {
      case KvType::F16: ScoreTile<F16Row>(d, a, t0, n, g, scale, tile_max); break;
      case KvType::Q8_0: ScoreTile<Q8Row>(d, a, t0, n, g, scale, tile_max); break;
      case KvType::Q4_0: ScoreTile<Q4Row>(d, a, t0, n, g, scale, tile_max); break;
      case KvType::IQ4_NL: ScoreTile<Iq4nlRow>(d, a, t0, n, g, scale, tile_max); break;
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* tile = a.tile + h * kAttentionTile;
      float* out = a.out + h * hd;
      const float weights = ExpTile(tile, n, tile_max[h]);
      // Rescale what was accumulated under the old maximum (exp(-inf) = 0 the first time).
      const float correction = std::exp(running_max[h] - tile_max[h]);
      if (correction != 1.0f) {
        const auto c = hn::Set(d, correction);
        for (int64_t j = 0; j < hd; j += N) hn::StoreU(hn::Mul(hn::LoadU(d, out + j), c), d, out + j);
        running_sum[h] *= correction;
      }
      running_max[h] = tile_max[h];
      running_sum[h] += weights;
    }
    const uint8_t* values = a.v.data + t0 * a.v.stride;
    switch (a.v.type) {
      case KvType::F16: AddValues<F16Row>(d, a, values, n, g); break;
      case KvType::Q8_0: AddValues<Q8Row>(d, a, values, n, g); break;
      case KvType::Q4_0: AddValues<Q4Row>(d, a, values, n, g); break;
      case KvType::IQ4_NL: AddValues<Iq4nlRow>(d, a, values, n, g); break;
    }
  }
  for (int64_t h = 0; h < heads; ++h) {
    // A sink joins the denominator under the common maximum; the sum may then be all sink.
    float rescale = 1.0f;
    if (a.sinks) {
      const float m = std::max(running_max[h], a.sinks[h]);
      rescale = std::exp(running_max[h] - m);
      running_sum[h] = running_sum[h] * rescale + std::exp(a.sinks[h] - m);
    }
    if (running_sum[h] <= 0.0f) continue;
    const auto inv = hn::Set(d, rescale / running_sum[h]);
    for (int64_t j = 0; j < hd; j += N) hn::StoreU(hn::Mul(hn::LoadU(d, a.out + h * hd + j), inv), d, a.out + h * hd + j);
  }
}

// The run of values a vector load must not cross: a head in f16, a block in q8_0, a
// block's half in q4_0 and iq4_nl.
inline int64_t LoadRun(KvType t, int64_t head_dim, int64_t g) {
  return t == KvType::F16 ? head_dim : t == KvType::Q8_0 ? g : g / 2;
}

void AttendImpl(const AttendArgs& a) {
  // CappedTag<float, C> has at most C lanes (fewer on narrow targets), and C divides
  // the width that must be whole vectors on both sides, so its lane count does too.
  const int64_t g = kv_group(static_cast<int>(a.head_dim));
  const int64_t whole = std::min(LoadRun(a.k.type, a.head_dim, g), LoadRun(a.v.type, a.head_dim, g));
  if (whole % 16 == 0) return Attend(hn::CappedTag<float, 16>(), a, g);
  if (whole % 8 == 0) return Attend(hn::CappedTag<float, 8>(), a, g);
  if (whole % 4 == 0) return Attend(hn::CappedTag<float, 4>(), a, g);
  Attend(hn::CappedTag<float, 1>(), a, g);
}

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qrun {

HWY_EXPORT(AttendImpl);

void attend(const AttendArgs& args) {
  if (args.heads < 1 || args.heads > kMaxAttendHeads) throw std::invalid_argument("attend: 1 to 8 heads at a time");
  HWY_DYNAMIC_DISPATCH(AttendImpl)(args);
}

}  // namespace qrun
#endif  // HWY_ONCE
