// AVX3_DL tiles of split-field rows (Q6, Q5, Q3), which store their blocks in groups of
// four (BlockGroup in quant/block_formats.h). Per group of 128 codes and row: one load of
// the low fields and one of the high fields, fixed permutations that put each code's
// bits beside each other (Codes below), two 512-bit vpdpbusd. The activations are laid
// out once per call to match (GroupActivations). Each block's four int32 lanes sum its
// products exactly, as the reference does; per lane the f32 step is d_w * d_a of its
// block, which changes only f32 rounding.

#if defined(QRUN_SIMD_SPLIT_GROUP_TILES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QRUN_SIMD_SPLIT_GROUP_TILES_INL_H_
#undef QRUN_SIMD_SPLIT_GROUP_TILES_INL_H_
#else
#define QRUN_SIMD_SPLIT_GROUP_TILES_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "quant/block_formats.h"
#include "simd/int8_tiles-inl.h"
#include "simd/kernels.h"
#include "simd/prefetch-inl.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")  // see simd/int8_tiles-inl.h
#endif
namespace qrun {
namespace HWY_NAMESPACE {
namespace split_groups {

#if HWY_TARGET == HWY_AVX3_DL

inline constexpr int64_t kBlocks = 4;  // BlockGroup<...>::kBlocks, the same for every type

// One group's activations for one token: lo[16i + j] and hi[16i + j] multiply block
// i's codes j and 16 + j; lane 4i of off holds the code offset times block i's
// activation sum, lanes 4i..4i+3 of da its scale. Blocks past the row's end are zeros.
struct alignas(64) GroupActivations {
  int8_t lo[64], hi[64];
  int32_t off[16];
  float da[16];
};

inline void PrepareToken(const BlockQ8A* xq, int64_t nb, int32_t offset, GroupActivations* out) {
  std::memset(static_cast<void*>(out), 0, static_cast<size_t>((nb + kBlocks - 1) / kBlocks) * sizeof(GroupActivations));
  for (int64_t b = 0; b < nb; ++b) {
    GroupActivations& g = out[b / kBlocks];
    const int64_t i = b % kBlocks;
    std::memcpy(g.lo + 16 * i, xq[b].qs, 16);
    std::memcpy(g.hi + 16 * i, xq[b].qs + 16, 16);
    g.off[4 * i] = offset * xq[b].sum;
    for (int64_t l = 0; l < 4; ++l) g.da[4 * i + l] = xq[b].d;
  }
}

// spread: byte 16i + j takes byte 8i + j % 8 of a pair field (block i's 8 bytes);
// shifting words with j >= 8 right by 2 then leaves code j's pair in bits 0-1 and code
// j + 16's in bits 4-5 (pair_field). bits: the low 16 bits of each block's u32 bit
// field (codes 0..15), then the high 16 (codes 16..31). scale: lane 4i + l takes scale i.
struct Tables {
  alignas(64) uint8_t spread[64] = {};
  alignas(64) uint16_t shift[32] = {};
  alignas(16) uint8_t bits[16] = {};
  alignas(64) int32_t scale[16] = {};
  constexpr Tables() {
    for (int p = 0; p < 64; ++p) spread[p] = static_cast<uint8_t>(p / 16 * 8 + p % 8);
    for (int w = 0; w < 32; ++w) shift[w] = (2 * w) % 16 >= 8 ? 2 : 0;
    for (int p = 0; p < 16; ++p) bits[p] = static_cast<uint8_t>(p % 8 / 2 * 4 + p / 8 * 2 + p % 2);
    for (int l = 0; l < 16; ++l) scale[l] = l / 4;
  }
};
inline constexpr Tables kTables{};

// Load n bytes (n = the full size unless kTail).
template <bool kTail>
HWY_INLINE __m512i Load64(const uint8_t* p, int64_t n) {
  if constexpr (kTail) return _mm512_maskz_loadu_epi8((__mmask64{1} << n) - 1, p);
  return _mm512_loadu_si512(p);
}
template <bool kTail>
HWY_INLINE __m256i Load32(const uint8_t* p, int64_t n) {
  if constexpr (kTail) return _mm256_maskz_loadu_epi8(static_cast<__mmask32>((uint64_t{1} << n) - 1), p);
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
template <bool kTail>
HWY_INLINE __m128i Load16(const uint8_t* p, int64_t n) {
  if constexpr (kTail) return _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1), p);
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// k pair fields (8 bytes each) as 64 bytes: code j of block i in bits 0-1 of byte
// 16i + j % 16 for j < 16, and in bits 4-5 for j >= 16.
template <bool kTail>
HWY_INLINE __m512i SpreadPairs(const uint8_t* p, int64_t k) {
  const __m512i spread = _mm512_permutexvar_epi8(_mm512_load_si512(kTables.spread),
                                                 _mm512_castsi256_si512(Load32<kTail>(p, 8 * k)));
  return _mm512_and_si512(_mm512_srlv_epi16(spread, _mm512_load_si512(kTables.shift)), _mm512_set1_epi8(0x33));
}

// k bit fields (u32 each) as two byte masks: codes 0..15 of each block, codes 16..31.
template <bool kTail>
HWY_INLINE void SplitBits(const uint8_t* p, int64_t k, __mmask64* lo, __mmask64* hi) {
  const __m128i halves = _mm_shuffle_epi8(Load16<kTail>(p, 4 * k), _mm_load_si128(reinterpret_cast<const __m128i*>(kTables.bits)));
  *lo = _cvtu64_mask64(static_cast<uint64_t>(_mm_cvtsi128_si64(halves)));
  *hi = _cvtu64_mask64(static_cast<uint64_t>(_mm_extract_epi64(halves, 1)));
}

// 0xE4: bits under the mask (third operand) from the first operand, the rest from the
// second.
HWY_INLINE __m512i Merge(__m512i under_mask, __m512i rest, __m512i mask) {
  return _mm512_ternarylogic_epi32(under_mask, rest, mask, 0xE4);
}

struct Codes {
  __m512i lo, hi;  // codes 0..15 and 16..31 of each block, as the activations' lo and hi
};

// Per type: the group's codes from its low and high fields (k blocks).
struct Q6Codes {
  using Block = BlockQ6;
  static constexpr int32_t kOffset = -32;
  static constexpr bool kOneRowMatvec = true;  // PrefetchConfig::matvec_rows
  template <bool kTail>
  static HWY_INLINE Codes Unpack(const uint8_t* low, const uint8_t* high, int64_t k) {
    const __m512i qs = Load64<kTail>(low, 16 * k), pairs = SpreadPairs<kTail>(high, k);
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    // 16-bit shifts move bits across the word's two bytes only into the bits taken from the other.
    return {Merge(qs, _mm512_slli_epi16(pairs, 4), nibble), Merge(_mm512_srli_epi16(qs, 4), pairs, nibble)};
  }
};

struct Q5Codes {
  using Block = BlockQ5;
  static constexpr int32_t kOffset = -16;
  static constexpr bool kOneRowMatvec = true;
  template <bool kTail>
  static HWY_INLINE Codes Unpack(const uint8_t* low, const uint8_t* high, int64_t k) {
    const __m512i qs = Load64<kTail>(low, 16 * k), nibble = _mm512_set1_epi8(0x0F), bit = _mm512_set1_epi8(0x10);
    __mmask64 lo_bits, hi_bits;
    SplitBits<kTail>(high, k, &lo_bits, &hi_bits);
    const __m512i lo = _mm512_and_si512(qs, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), nibble);
    return {_mm512_mask_add_epi8(lo, lo_bits, lo, bit), _mm512_mask_add_epi8(hi, hi_bits, hi, bit)};
  }
};

struct Q3Codes {
  using Block = BlockQ3;
  static constexpr int32_t kOffset = -4;
  static constexpr bool kOneRowMatvec = false;  // one row is compute bound
  template <bool kTail>
  static HWY_INLINE Codes Unpack(const uint8_t* low, const uint8_t* high, int64_t k) {
    const __m512i pairs = SpreadPairs<kTail>(low, k), two = _mm512_set1_epi8(0x03), bit = _mm512_set1_epi8(0x04);
    __mmask64 lo_bits, hi_bits;
    SplitBits<kTail>(high, k, &lo_bits, &hi_bits);
    const __m512i lo = _mm512_and_si512(pairs, two), hi = _mm512_and_si512(_mm512_srli_epi16(pairs, 4), two);
    return {_mm512_mask_add_epi8(lo, lo_bits, lo, bit), _mm512_mask_add_epi8(hi, hi_bits, hi, bit)};
  }
};

struct GroupWeights {
  Codes codes;
  __m512 dw;  // per lane, its block's scale
};

// The group at p, of k blocks; kTail: k < 4, loads masked to the group's bytes.
template <class Fmt, bool kTail>
HWY_INLINE GroupWeights Unpack(const uint8_t* p, int64_t k) {
  constexpr int64_t kLow = SplitFields<typename Fmt::Block>::kLow;
  const __m128i d = kTail ? _mm_maskz_loadu_epi16(static_cast<__mmask8>((1u << k) - 1), p)
                          : _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return {Fmt::template Unpack<kTail>(p + 2 * k, p + (2 + kLow) * k, k),
          _mm512_permutexvar_ps(_mm512_load_si512(kTables.scale), _mm512_castps128_ps512(_mm_cvtph_ps(d)))};
}

template <class Fmt, int R, int T, bool kTail>
HWY_INLINE void Group(const uint8_t* w, int64_t row_bytes, int64_t g, int64_t k, const GroupActivations* a,
                      int64_t a_stride, PrefetchLevel pf_level, int64_t pf_offset, __m512 (&acc)[R][T]) {
  constexpr int64_t kBytes = BlockGroup<typename Fmt::Block>::kBytes;
  GroupWeights gw[R];
  for (int r = 0; r < R; ++r) {
    const uint8_t* p = w + r * row_bytes + g * kBytes;
    if (pf_level != PrefetchLevel::None) {
      // Each line once: those that start within this group's span ahead. A prefetch per
      // 64 bytes from the group's start (1.6 per line for q6's 104-byte groups) held more
      // of the core's miss buffers for lines already requested (Zen 5, four-row q6 tiles
      // from DRAM at l2:24k: 13.7-15.4 -> 17.0-17.7 GB/s; README, Speed).
      const auto ahead = reinterpret_cast<uintptr_t>(p + pf_offset);
      for (uintptr_t line = (ahead + 63) & ~uintptr_t{63}; line < ahead + kBytes; line += 64)
        PrefetchRow(reinterpret_cast<const void*>(line), pf_level);
    }
    gw[r] = Unpack<Fmt, kTail>(p, k);
  }
  for (int t = 0; t < T; ++t) {
    const GroupActivations& ga = a[t * a_stride + g];
    const __m512i lo = _mm512_load_si512(ga.lo), hi = _mm512_load_si512(ga.hi), off = _mm512_load_si512(ga.off);
    const __m512 da = _mm512_load_ps(ga.da);
    for (int r = 0; r < R; ++r) {
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(off, gw[r].codes.lo, lo), gw[r].codes.hi, hi);
      acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(gw[r].dw, da), acc[r][t]);
    }
  }
}

// y[t * ldy + r] = dot(row r, token t) for r < R, t < T.
template <class Fmt, int R, int T>
HWY_NOINLINE void Tile(const uint8_t* w, int64_t row_bytes, int64_t nb, const GroupActivations* a, int64_t a_stride,
                       float* y, int64_t ldy, const PrefetchConfig& pf) {
  constexpr int64_t kBytes = BlockGroup<typename Fmt::Block>::kBytes;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  TilePrefetch<R> ahead(pf, row_bytes);
  const int64_t full = nb / kBlocks;
  for (int64_t g = 0; g < full; ++g)
    Group<Fmt, R, T, false>(w, row_bytes, g, kBlocks, a, a_stride, pf.level, ahead.At(g * kBytes), acc);
  if (nb % kBlocks != 0)
    Group<Fmt, R, T, true>(w, row_bytes, full, nb % kBlocks, a, a_stride, pf.level, ahead.At(full * kBytes), acc);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

inline constexpr int kTileRows = 4;
inline constexpr int kTileTokens = 4;

template <class Fmt>
HWY_INLINE void MatMul(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const BlockQ8A* xq, float* y,
                       int64_t ldy) {
  static_assert(BlockGroup<typename Fmt::Block>::kBlocks == kBlocks);
  if (rows <= 0 || n <= 0) return;
  const int64_t nb = q8a_blocks(cols), ng = (nb + kBlocks - 1) / kBlocks;
  const int64_t rb = static_cast<int64_t>(sizeof(typename Fmt::Block)) * nb;
  auto* acts = reinterpret_cast<GroupActivations*>(
      int8_tiles::stream::Scratch(static_cast<size_t>(n * ng) * sizeof(GroupActivations)));
  for (int64_t t = 0; t < n; ++t) PrepareToken(xq + t * nb, nb, Fmt::kOffset, acts + t * ng);
  const PrefetchConfig pf = prefetch_config_for(false);
  const bool one_row = Fmt::kOneRowMatvec && pf.matvec_rows == 1;
  int8_tiles::stream::ForEachTileRowsOuter<kTileRows, kTileTokens>(rows, n, one_row, [&]<int R, int T>(int64_t r, int64_t t) {
    Tile<Fmt, R, T>(w + r * rb, rb, nb, acts + t * ng, ng, y + t * ldy + r, ldy, pf);
  });
}

#endif  // HWY_TARGET == HWY_AVX3_DL

}  // namespace split_groups
}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#endif  // include guard
