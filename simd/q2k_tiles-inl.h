// AVX3_DL tiles of Q2K rows (GGUF's Q2_K super-blocks, read as stored). Per super-block
// and row, the 16 four-bit scales become a 64-byte table of every scale times every code
// (0..3); one vpermb then turns 64 codes into u8 products sc * code (at most 45), which
// one vpdpbusd multiplies by the activations. 64 weights cost a shift, a ternlog, a
// vpermb and a vpdpbusd, where the 256-bit kernel (int8_tiles-inl.h) takes maddubs,
// madd with the scales and their shuffle per 32 (kernels_bench, Zen 5: matvec in L2
// 11.6 -> 21 GB/s). Each int32 lane sums four products of one run exactly, as the
// reference does; the lanes' f32 step is d_w * d_a of their run, and the minimums' term
// is one product of 16 floats per super-block with the activations' sub-block sums.

#if defined(QRUN_SIMD_Q2K_TILES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QRUN_SIMD_Q2K_TILES_INL_H_
#undef QRUN_SIMD_Q2K_TILES_INL_H_
#else
#define QRUN_SIMD_Q2K_TILES_INL_H_
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
namespace q2k_tiles {

#if HWY_TARGET == HWY_AVX3_DL

inline constexpr int64_t kRuns = 8;  // activation blocks per super-block

// A super-block's 64 code bytes hold runs 0..3 in bytes 0-31 (run k in bits 2k, 2k + 1)
// and runs 4..7 in bytes 32-63: one shift by 2p of all 64 puts the codes of runs p and
// p + 4 (the pair p) in bits 0-1. The activations are laid out to match, once per call.
// One super-block's activations for one token: qs[64p ...] runs p and p + 4; da[p] the
// step of each int32 lane of pair p's dot products (lanes 0-7: run p, 8-15: run p + 4);
// sums[s] sub-block s's activation sum times its step. Runs past the row's end are zeros.
struct alignas(64) SuperBlockActivations {
  int8_t qs[32 * kRuns];
  float da[kRuns / 2][16];
  float sums[16];
};

inline void PrepareToken(const BlockQ8A* xq, int64_t nb, SuperBlockActivations* out) {
  if (nb % kRuns != 0) std::memset(static_cast<void*>(out + nb / kRuns), 0, sizeof(SuperBlockActivations));
  for (int64_t b = 0; b < nb; ++b) {
    SuperBlockActivations& s = out[b / kRuns];
    const int64_t k = b % kRuns;
    const BlockQ8A& a = xq[b];
    const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
    _mm256_store_si256(reinterpret_cast<__m256i*>(s.qs + 64 * (k % 4) + 32 * (k / 4)), qs);
    _mm256_store_ps(s.da[k % 4] + 8 * (k / 4), _mm256_set1_ps(a.d));
    // Codes 0..15's sum: sad of qs + 128 gives per 8 bytes their sum + 1024.
    const __m128i eights = _mm256_castsi256_si128(_mm256_sad_epu8(_mm256_xor_si256(qs, _mm256_set1_epi8(char(0x80))),
                                                                  _mm256_setzero_si256()));
    const int64_t first = _mm_cvtsi128_si64(eights) + _mm_extract_epi64(eights, 1) - 2048;
    s.sums[2 * k] = a.d * static_cast<float>(first);
    s.sums[2 * k + 1] = a.d * static_cast<float>(a.sum - first);
  }
}

// scale: byte 4s + c takes scale byte s (the product table's layout). sub[p]: byte i of
// pair p's codes belongs to sub-block s = 2p + i / 16 (i < 32) or 8 + 2p + (i - 32) / 16,
// whose products start at table byte 4s.
struct Tables {
  alignas(64) uint8_t scale[64] = {};
  alignas(64) uint8_t sub[kRuns / 2][64] = {};
  constexpr Tables() {
    for (int i = 0; i < 64; ++i) scale[i] = static_cast<uint8_t>(i / 4);
    for (int p = 0; p < kRuns / 2; ++p)
      for (int i = 0; i < 64; ++i) sub[p][i] = static_cast<uint8_t>(4 * (i / 32 * 8 + 2 * p + i % 32 / 16));
  }
};
inline constexpr Tables kTables{};

// Byte 4s + c: c * (scale of sub-block s), c = 0..3.
HWY_INLINE __m512i ProductTable(const BlockQ2K& b) {
  const __m128i sc = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)), _mm_set1_epi8(15));
  const __m512i x = _mm512_permutexvar_epi8(_mm512_load_si512(kTables.scale), _mm512_castsi128_si512(sc));
  const __m512i odd = _mm512_maskz_mov_epi8(0xAAAAAAAAAAAAAAAAull, x);           // c = 1, 3: x
  return _mm512_mask_add_epi8(odd, 0xCCCCCCCCCCCCCCCCull, odd, _mm512_add_epi8(x, x));  // c = 2, 3: + 2x
}

// Pair p's 64 table indices: its codes (qs shifted by 2p) or'ed with their sub-blocks'
// offsets.
HWY_INLINE __m512i PairIndices(__m512i qs, int p) {
  // 0xEA: (shifted & 3) | sub
  return _mm512_ternarylogic_epi32(_mm512_srli_epi64(qs, 2 * p), _mm512_set1_epi8(3), _mm512_load_si512(kTables.sub[p]),
                                   0xEA);
}

template <int R, int T>
HWY_INLINE void SuperBlock(const uint8_t* w, int64_t row_bytes, int64_t sb, const SuperBlockActivations* a,
                           int64_t a_stride, PrefetchLevel pf_level, int64_t pf_offset, __m512 (&acc)[R][T]) {
  const BlockQ2K* blk[R];
  __m512i table[R], qs[R];
  __m512 dw[R], dmin[R];
  for (int r = 0; r < R; ++r) {
    const uint8_t* p = w + r * row_bytes + sb * static_cast<int64_t>(sizeof(BlockQ2K));
    if (pf_level != PrefetchLevel::None) {
      PrefetchRow(p + pf_offset, pf_level);
      PrefetchRow(p + pf_offset + 64, pf_level);
    }
    blk[r] = reinterpret_cast<const BlockQ2K*>(p);
    table[r] = ProductTable(*blk[r]);
    qs[r] = _mm512_loadu_si512(blk[r]->qs);
    uint32_t steps;  // d, dmin
    std::memcpy(&steps, &blk[r]->d, 4);
    const __m512 both = _mm512_cvtph_ps(_mm256_set1_epi32(static_cast<int32_t>(steps)));
    dw[r] = _mm512_permute_ps(both, 0x00);
    dmin[r] = _mm512_permute_ps(both, 0x55);
  }
  for (int p = 0; p < kRuns / 2; ++p) {
    __m512i wv[R];
    for (int r = 0; r < R; ++r) wv[r] = _mm512_permutexvar_epi8(PairIndices(qs[r], p), table[r]);
    for (int t = 0; t < T; ++t) {
      const SuperBlockActivations& s = a[t * a_stride + sb];
      const __m512i av = _mm512_load_si512(s.qs + 64 * p);
      const __m512 da = _mm512_load_ps(s.da[p]);
      for (int r = 0; r < R; ++r) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[r], av);
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw[r], da), acc[r][t]);
      }
    }
  }
  // Minimums: - dmin * sum over the 16 sub-blocks of m_s * (activation sum of s).
  for (int r = 0; r < R; ++r) {
    const __m128i m = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[r]->scales)), 4),
                                    _mm_set1_epi8(15));
    const __m512 mins = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(m)), dmin[r]);
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_fnmadd_ps(mins, _mm512_load_ps(a[t * a_stride + sb].sums), acc[r][t]);
  }
}

// y[t * ldy + r] = dot(row r, token t) for r < R, t < T.
template <int R, int T>
HWY_NOINLINE void Tile(const uint8_t* w, int64_t row_bytes, int64_t nsb, const SuperBlockActivations* a,
                       int64_t a_stride, float* y, int64_t ldy, const PrefetchConfig& pf) {
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  TilePrefetch<R> ahead(pf, row_bytes);
  for (int64_t sb = 0; sb < nsb; ++sb)
    SuperBlock<R, T>(w, row_bytes, sb, a, a_stride, pf.level, ahead.At(sb * static_cast<int64_t>(sizeof(BlockQ2K))), acc);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

inline constexpr int kTileRows = 4;
inline constexpr int kTileTokens = 4;

HWY_INLINE void MatMul(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const BlockQ8A* xq, float* y,
                       int64_t ldy) {
  if (rows <= 0 || n <= 0) return;
  const int64_t nb = q8a_blocks(cols), nsb = (nb + kRuns - 1) / kRuns;
  const int64_t rb = dtype_row_bytes(DType::Q2K, cols);
  auto* acts = reinterpret_cast<SuperBlockActivations*>(
      int8_tiles::stream::Scratch(static_cast<size_t>(n * nsb) * sizeof(SuperBlockActivations)));
  for (int64_t t = 0; t < n; ++t) PrepareToken(xq + t * nb, nb, acts + t * nsb);
  const PrefetchConfig pf = prefetch_config_for(false);
  int8_tiles::stream::ForEachTileRowsOuter<kTileRows, kTileTokens>(rows, n, false, [&]<int R, int T>(int64_t r, int64_t t) {
    Tile<R, T>(w + r * rb, rb, nsb, acts + t * nsb, nsb, y + t * ldy + r, ldy, pf);
  });
}

#endif  // HWY_TARGET == HWY_AVX3_DL

}  // namespace q2k_tiles
}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#endif  // include guard
