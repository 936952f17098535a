// AVX3_DL tiles of Q6 rows, which store their blocks in groups of four (Q6Group in
// quant/block_formats.h). Per group of 128 codes and row: one 64-byte load of the
// nibbles, one 32-byte load of the pairs that a fixed vpermb spreads to the nibbles'
// bytes, one word shift for the pairs and a shift and a merge per half, two 512-bit
// vpdpbusd. The activations are laid out once per call to match (GroupActivations).
// Each block's four int32 lanes sum its products exactly, as the reference does; per
// lane the f32 step is d_w * d_a of its block, which changes only f32 rounding.

#if defined(QRUN_SIMD_Q6_GROUP_TILES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QRUN_SIMD_Q6_GROUP_TILES_INL_H_
#undef QRUN_SIMD_Q6_GROUP_TILES_INL_H_
#else
#define QRUN_SIMD_Q6_GROUP_TILES_INL_H_
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
namespace q6_groups {

#if HWY_TARGET == HWY_AVX3_DL

// One group's activations for one token: lo[16i + j] and hi[16i + j] multiply block
// i's codes j and 16 + j (the low and high nibbles of its qs byte j); lane 4i of off
// holds -32 * block i's activation sum (the code offset), lanes 4i..4i+3 of da its
// scale. Blocks past the row's end are zeros.
struct alignas(64) GroupActivations {
  int8_t lo[64], hi[64];
  int32_t off[16];
  float da[16];
};

inline void PrepareToken(const BlockQ8A* xq, int64_t nb, GroupActivations* out) {
  std::memset(static_cast<void*>(out), 0, static_cast<size_t>((nb + 3) / 4) * sizeof(GroupActivations));
  for (int64_t b = 0; b < nb; ++b) {
    GroupActivations& g = out[b / Q6Group::kBlocks];
    const int64_t i = b % Q6Group::kBlocks;
    std::memcpy(g.lo + 16 * i, xq[b].qs, 16);
    std::memcpy(g.hi + 16 * i, xq[b].qs + 16, 16);
    g.off[4 * i] = -32 * xq[b].sum;
    for (int64_t l = 0; l < 4; ++l) g.da[4 * i + l] = xq[b].d;
  }
}

// Byte 16i + j of the nibbles takes qh byte 8i + j % 8 of its block; words with
// j >= 8 shift it right by 2, which leaves code j's pair in bits 0-1 and code j + 16's
// in bits 4-5 (BlockQ6::qh); lane 4i + l takes scale i.
struct Tables {
  alignas(64) uint8_t spread[64] = {};
  alignas(64) uint16_t shift[32] = {};
  alignas(64) int32_t scale[16] = {};
  constexpr Tables() {
    for (int p = 0; p < 64; ++p) spread[p] = static_cast<uint8_t>(p / 16 * 8 + p % 8);
    for (int w = 0; w < 32; ++w) shift[w] = (2 * w) % 16 >= 8 ? 2 : 0;
    for (int l = 0; l < 16; ++l) scale[l] = l / 4;
  }
};
inline constexpr Tables kTables{};

struct GroupWeights {
  __m512i lo, hi;  // codes 0..15 and 16..31 of each block, as the activations' lo and hi
  __m512 dw;       // per lane, its block's scale
};

// The group at p, of k blocks; kTail: k < 4, loads masked to the group's 26k bytes.
template <bool kTail>
HWY_INLINE GroupWeights Unpack(const uint8_t* p, int64_t k) {
  __m128i d;
  __m512i qs, qh;
  if constexpr (kTail) {
    d = _mm_maskz_loadu_epi16(static_cast<__mmask8>((1u << k) - 1), p);
    qs = _mm512_maskz_loadu_epi8((__mmask64{1} << (16 * k)) - 1, p + 2 * k);
    qh = _mm512_castsi256_si512(_mm256_maskz_loadu_epi8(static_cast<__mmask32>((1u << (8 * k)) - 1), p + 18 * k));
  } else {
    d = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    qs = _mm512_loadu_si512(p + 8);
    qh = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 72)));
  }
  const __m512i spread = _mm512_permutexvar_epi8(_mm512_load_si512(kTables.spread), qh);
  const __m512i pairs = _mm512_and_si512(_mm512_srlv_epi16(spread, _mm512_load_si512(kTables.shift)), _mm512_set1_epi8(0x33));
  const __m512i nibble = _mm512_set1_epi8(0x0F);
  // 0xE4: nibble bits from the first operand, the rest from the second. 16-bit shifts
  // move bits across the word's two bytes only into the bits taken from the other.
  return {_mm512_ternarylogic_epi32(qs, _mm512_slli_epi16(pairs, 4), nibble, 0xE4),
          _mm512_ternarylogic_epi32(_mm512_srli_epi16(qs, 4), pairs, nibble, 0xE4),
          _mm512_permutexvar_ps(_mm512_load_si512(kTables.scale), _mm512_castps128_ps512(_mm_cvtph_ps(d)))};
}

template <int R, int T, bool kTail>
HWY_INLINE void Group(const uint8_t* w, int64_t row_bytes, int64_t g, int64_t k, const GroupActivations* a,
                      int64_t a_stride, PrefetchLevel pf_level, int64_t pf_offset, __m512 (&acc)[R][T]) {
  GroupWeights gw[R];
  for (int r = 0; r < R; ++r) {
    const uint8_t* p = w + r * row_bytes + g * Q6Group::kBytes;
    if (pf_level != PrefetchLevel::None) {  // a group spans at most 3 lines; the next group's covers the third
      PrefetchRow(p + pf_offset, pf_level);
      PrefetchRow(p + pf_offset + 64, pf_level);
    }
    gw[r] = Unpack<kTail>(p, k);
  }
  for (int t = 0; t < T; ++t) {
    const GroupActivations& ga = a[t * a_stride + g];
    const __m512i lo = _mm512_load_si512(ga.lo), hi = _mm512_load_si512(ga.hi), off = _mm512_load_si512(ga.off);
    const __m512 da = _mm512_load_ps(ga.da);
    for (int r = 0; r < R; ++r) {
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(off, gw[r].lo, lo), gw[r].hi, hi);
      acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(gw[r].dw, da), acc[r][t]);
    }
  }
}

// y[t * ldy + r] = dot(row r, token t) for r < R, t < T.
template <int R, int T>
HWY_NOINLINE void Tile(const uint8_t* w, int64_t row_bytes, int64_t nb, const GroupActivations* a, int64_t a_stride,
                       float* y, int64_t ldy, const PrefetchConfig& pf) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  TilePrefetch<R> ahead(pf, row_bytes);
  const int64_t full = nb / Q6Group::kBlocks;
  for (int64_t g = 0; g < full; ++g)
    Group<R, T, false>(w, row_bytes, g, Q6Group::kBlocks, a, a_stride, pf.level, ahead.At(g * Q6Group::kBytes), acc);
  if (nb % Q6Group::kBlocks != 0)
    Group<R, T, true>(w, row_bytes, full, nb % Q6Group::kBlocks, a, a_stride, pf.level,
                      ahead.At(full * Q6Group::kBytes), acc);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

inline constexpr int kTileRows = 4;
inline constexpr int kTileTokens = 4;

HWY_INLINE void MatMul(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const BlockQ8A* xq, float* y,
                       int64_t ldy) {
  if (rows <= 0 || n <= 0) return;
  const int64_t nb = q8a_blocks(cols), ng = (nb + Q6Group::kBlocks - 1) / Q6Group::kBlocks;
  const int64_t rb = dtype_row_bytes(DType::Q6, cols);
  auto* acts = reinterpret_cast<GroupActivations*>(
      int8_tiles::stream::Scratch(static_cast<size_t>(n * ng) * sizeof(GroupActivations)));
  for (int64_t t = 0; t < n; ++t) PrepareToken(xq + t * nb, nb, acts + t * ng);
  const PrefetchConfig pf = prefetch_config_for(false);
  int8_tiles::stream::ForEachTileRowsOuter<kTileRows, kTileTokens>(rows, n, [&]<int R, int T>(int64_t r, int64_t t) {
    Tile<R, T>(w + r * rb, rb, nb, acts + t * ng, ng, y + t * ldy + r, ldy, pf);
  });
}

#endif  // HWY_TARGET == HWY_AVX3_DL

}  // namespace q6_groups
}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#endif  // include guard
