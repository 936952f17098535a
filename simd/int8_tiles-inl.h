// Per-target tiles of integer dot products between Q4/Q8 weight rows and int8
// activation blocks (BlockQ8A). A tile is R weight rows x T tokens: each weight block is
// loaded and unpacked once and reused for T tokens, each activation block is loaded once
// and reused for R rows. matvec is the T = 1 case.
//
// Each block's 32 products are summed exactly in int32 (as the scalar reference does),
// then scaled by d_w * d_a and accumulated in f32.
//
// AVX3_DL (AVX-512 VNNI) uses 512-bit vpdpbusd on the rows as stored, with the
// activations rearranged once per call to match (namespace stream below):
//   Q4: codes 0..15 are the unsigned operand; -8 * BlockQ8A::sum enters the int32 sums.
//   Q8: w ^ 0x80 = w + 128 is the unsigned operand; -128 * BlockQ8A::sum enters the sums.
// AVX2 / AVX3 use u8 x s8 multiply-adds on 256-bit vectors, two blocks per vector for
// the formats of at most 6 bits (BlockPairTile), one block per vector for Q8 and rows
// left over (Tile):
//   Q4: as above; Q8: sign trick, |w| (u8) x sign(a, w) (s8), since w and a are in
//   [-127, 127]; vpmaddubsw (pairs to int16; at most 2*127*127 < 32767, so no
//   saturation) then vpmaddwd with ones. On CPUs that also have vpdpbusd (AVX-VNNI
//   beside AVX2, AVX-512 VNNI beside AVX3) a second copy of these kernels sums with it
//   (VnniDot, simd/int8_vnni.h). Other targets use portable Highway ops.
// Q2K super-blocks (8 activation blocks, a scale and a minimum per 16 weights) have
// their own tiles (Q2KTile, Q2KMatMul here; AVX3_DL: simd/q2k_tiles-inl.h).

#if defined(QRUN_SIMD_INT8_TILES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QRUN_SIMD_INT8_TILES_INL_H_
#undef QRUN_SIMD_INT8_TILES_INL_H_
#else
#define QRUN_SIMD_INT8_TILES_INL_H_
#endif

#include <array>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "hwy/highway.h"
#include "quant/block_formats.h"
#include "quant/quantize.h"
#include "simd/kernels.h"
#include "simd/prefetch-inl.h"

#undef QRUN_X86_INT8
#undef QRUN_X86_VNNI
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#define QRUN_X86_INT8 1
#else
#define QRUN_X86_INT8 0
#endif
#if HWY_TARGET == HWY_AVX3_DL
#define QRUN_X86_VNNI 1
#else
#define QRUN_X86_VNNI 0
#endif
// Targets whose int8 kernels come in a second copy with vpdpbusd (VnniDot below).
#undef QRUN_X86_VNNI_COPY
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
#define QRUN_X86_VNNI_COPY 1
#else
#define QRUN_X86_VNNI_COPY 0
#endif

HWY_BEFORE_NAMESPACE();
#if QRUN_X86_VNNI
// Highway 1.0.3's AVX3_DL target string names avxvnni (VEX) but not avx512vnni (EVEX),
// while its CPU check for AVX3_DL requires AVX-512 VNNI; enable the EVEX form, which
// every CPU that passes that check has.
#pragma GCC target("avx512vnni")
#endif
namespace qrun {
namespace HWY_NAMESPACE {
namespace int8_tiles {

// q8 rows have their own prefetch distance (simd/prefetch.h).
template <class Block>
inline constexpr bool kWideBlock = std::is_same_v<Block, BlockQ8>;

namespace hn = hwy::HWY_NAMESPACE;

#if QRUN_X86_INT8

HWY_INLINE float HalfToFloat(uint16_t h) { return _cvtsh_ss(h); }

HWY_INLINE __m256i LoadActivations(const BlockQ8A& a) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
}

struct WideActivations {
  __m256i hi, lo;
};
HWY_INLINE WideActivations LoadActivations(const BlockQ16A& a) {
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.hi)),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.lo))};
}

// How the AVX2 and AVX3 kernels sum u8 x s8 products in groups of 4 into int32 lanes
// (plus acc): Acc on 256-bit vectors, and on 512-bit ones for AVX3's TilePairs.
// MaddubsDot: vpmaddubsw (pairs to int16) then vpmaddwd with ones, on every such CPU.
// AVX3_DL uses the stream kernels below, never these; a _mm256_dpbusd_epi32 there would
// compile to the VEX form (AVX-VNNI, SIGILL on Zen 4 and Ice Lake) because Highway
// 1.0.3's AVX3_DL target string enables avxvnni (tests/simd/check_target_isa.py).
struct MaddubsDot {
  static constexpr bool kVnni = false;
  static HWY_INLINE __m256i Acc(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
  }
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  static HWY_INLINE __m512i Acc(__m512i acc, __m512i u, __m512i s) {
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
  }
#endif
};

// VnniDot: one vpdpbusd, for the CPUs whose Highway target lacks it (simd/int8_vnni.h):
// on AVX2 the VEX form (AVX-VNNI: Intel Alder Lake and later client CPUs, Zen 5), on AVX3
// the EVEX one (AVX-512 VNNI without VBMI: Cascade Lake). Inline asm, because the
// target's compiler flags must not enable it for the rest of its code; the kernels
// instantiated with VnniDot run only where CPUID reports it, and the ISA check allows
// vpdpbusd only in functions that name VnniDot.
#if QRUN_X86_VNNI_COPY
struct VnniDot {
  static constexpr bool kVnni = true;
  template <class V>  // __m256i, or __m512i on AVX3
  static HWY_INLINE V Acc(V acc, V u, V s) {
#if HWY_TARGET == HWY_AVX2  // VEX can name only the first 16 vector registers
    asm("%{vex%} vpdpbusd %[s], %[u], %[acc]" : [acc] "+x"(acc) : [u] "x"(u), [s] "xm"(s));
#else
    asm("vpdpbusd %[s], %[u], %[acc]" : [acc] "+v"(acc) : [u] "v"(u), [s] "vm"(s));
#endif
    return acc;
  }
};
#endif
using BaseDot = MaddubsDot;

// The 16 packed bytes of a Q4-layout block in both halves (one load-broadcast), the
// upper half shifted right by 4: low nibbles give elements 0..15, high nibbles 16..31.
HWY_INLINE __m256i Nibbles(const uint8_t* qs) {
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  const __m256i shifted = _mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0));
  return _mm256_and_si256(shifted, _mm256_set1_epi8(0x0F));
}

// Pairs laid out as BlockQ6::qh (byte j: elements j, j+8, j+16, j+24), in element order.
HWY_INLINE __m256i Pairs(const uint8_t* q) {
  int64_t bytes;
  __builtin_memcpy(&bytes, q, 8);
  const __m256i shifted = _mm256_srlv_epi64(_mm256_set1_epi64x(bytes), _mm256_set_epi64x(6, 4, 2, 0));
  return _mm256_and_si256(shifted, _mm256_set1_epi8(3));
}

// 32 bits (bit j: element j) as bytes 0 or `value`, in element order.
HWY_INLINE __m256i Bits(const uint8_t* q, char value) {
  int32_t word;
  __builtin_memcpy(&word, q, 4);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(word), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                                                      0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(value));
}

// Unsigned codes with an offset: x = d * (code - kOffset...) enters as u8 x s8 products
// plus kOffset * BlockQ8A::sum.
template <class B, int32_t kOffset_>
struct UnsignedCodeRows {
  using Block = B;
  static constexpr int32_t kOffset = kOffset_;
  using Prepared = __m256i;  // 32 codes, element order
  template <class D>
  static HWY_INLINE __m256i Dot(const Prepared& codes, const BlockQ8A& a, __m256i av) {
    const __m256i offset = _mm256_zextsi128_si256(_mm_cvtsi32_si128(kOffset * a.sum));
    return D::Acc(offset, codes, av);
  }
};

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
// AVX-512: the split-field types (Q6, Q5, Q3) unpack and multiply two consecutive blocks
// per 512-bit vector (block b in the low half, b+1 in the high half), halving the
// unpacking work that bounds their row kernels (one block per 256-bit vector ran at
// about half of q4's bytes/s in L2 on Zen 5).
#define QRUN_X86_PAIRS 1

HWY_INLINE __m512i Halves(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

HWY_INLINE __m512i Nibbles2(const uint8_t* qs0, const uint8_t* qs1) {
  const __m256i two = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs0))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs1)), 1);
  const __m512i dup = _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0), _mm512_castsi256_si512(two));
  const __m512i shifted = _mm512_srlv_epi64(dup, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0));
  return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F));
}

HWY_INLINE __m512i Pairs2(const uint8_t* q0, const uint8_t* q1) {
  int64_t b0, b1;
  __builtin_memcpy(&b0, q0, 8);
  __builtin_memcpy(&b1, q1, 8);
  const __m512i both = Halves(_mm256_set1_epi64x(b0), _mm256_set1_epi64x(b1));
  return _mm512_and_si512(_mm512_srlv_epi64(both, _mm512_set_epi64(6, 4, 2, 0, 6, 4, 2, 0)), _mm512_set1_epi8(3));
}

HWY_INLINE __m512i Bits2(const uint8_t* q0, const uint8_t* q1, char value) {
  int32_t w0, w1;
  __builtin_memcpy(&w0, q0, 4);
  __builtin_memcpy(&w1, q1, 4);
  const __m512i words = Halves(_mm256_set1_epi32(w0), _mm256_set1_epi32(w1));
  const __m512i spread = _mm512_shuffle_epi8(
      words, _mm512_set_epi64(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0, 0x0303030303030303,
                              0x0202020202020202, 0x0101010101010101, 0));
  const __mmask64 set = _mm512_test_epi8_mask(spread, _mm512_set1_epi64(static_cast<int64_t>(0x8040201008040201)));
  return _mm512_maskz_set1_epi8(set, value);
}
#else
#define QRUN_X86_PAIRS 0
#endif

struct Q4Rows : UnsignedCodeRows<BlockQ4, -8> {
  static HWY_INLINE Prepared Prepare(const BlockQ4& b) { return Nibbles(b.qs); }
};

struct Q6Rows : UnsignedCodeRows<BlockQ6, -32> {
  using Ref = SplitBlockRef<BlockQ6>;
  static HWY_INLINE Prepared Prepare(const Ref& b) {
    return _mm256_or_si256(Nibbles(b.low), _mm256_slli_epi16(Pairs(b.high), 4));  // pairs < 4: no carry between bytes
  }
#if QRUN_X86_PAIRS
  static HWY_INLINE __m512i Prepare2(const Ref& b0, const Ref& b1) {
    return _mm512_or_si512(Nibbles2(b0.low, b1.low), _mm512_slli_epi16(Pairs2(b0.high, b1.high), 4));
  }
#endif
};

struct Q5Rows : UnsignedCodeRows<BlockQ5, -16> {
  using Ref = SplitBlockRef<BlockQ5>;
  static HWY_INLINE Prepared Prepare(const Ref& b) { return _mm256_or_si256(Nibbles(b.low), Bits(b.high, 0x10)); }
#if QRUN_X86_PAIRS
  static HWY_INLINE __m512i Prepare2(const Ref& b0, const Ref& b1) {
    return _mm512_or_si512(Nibbles2(b0.low, b1.low), Bits2(b0.high, b1.high, 0x10));
  }
#endif
};

struct Q3Rows : UnsignedCodeRows<BlockQ3, -4> {
  using Ref = SplitBlockRef<BlockQ3>;
  static HWY_INLINE Prepared Prepare(const Ref& b) { return _mm256_or_si256(Pairs(b.low), Bits(b.high, 0x04)); }
#if QRUN_X86_PAIRS
  static HWY_INLINE __m512i Prepare2(const Ref& b0, const Ref& b1) {
    return _mm512_or_si512(Pairs2(b0.low, b1.low), Bits2(b0.high, b1.high, 0x04));
  }
#endif
};

struct Q8Rows {
  using Block = BlockQ8;
  struct Prepared {
    __m256i w;      // signs
    __m256i abs_w;  // unsigned operand
  };
  static HWY_INLINE Prepared Prepare(const BlockQ8& b) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
    return {w, _mm256_abs_epi8(w)};
  }
  template <class D>
  static HWY_INLINE __m256i Dot(const Prepared& p, const BlockQ8A&, __m256i av) {
    return D::Acc(_mm256_setzero_si256(), p.abs_w, _mm256_sign_epi8(av, p.w));
  }
  // 128 * hi_dot + lo_dot: |hi_dot| <= 32 * 127 * 127, far from int32's limit.
  template <class D>
  static HWY_INLINE __m256i Dot(const Prepared& p, const BlockQ16A&, const WideActivations& av) {
    const __m256i hi = D::Acc(_mm256_setzero_si256(), p.abs_w, _mm256_sign_epi8(av.hi, p.w));
    return D::Acc(_mm256_slli_epi32(hi, 7), p.abs_w, _mm256_sign_epi8(av.lo, p.w));
  }
};

// Signed code-book levels (|level| <= 127) take Q8's sign trick. B: BlockQ4N or BlockMx4.
template <class B>
struct CodeBookRows : Q8Rows {
  using Block = B;
  static HWY_INLINE Prepared Prepare(const B& b) {
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kCodeBook<B>)));
    const __m256i w = _mm256_shuffle_epi8(table, Nibbles(b.qs));
    return {w, _mm256_abs_epi8(w)};
  }
};
using Q4NRows = CodeBookRows<BlockQ4N>;
using Mx4Rows = CodeBookRows<BlockMx4>;

HWY_INLINE float HorizontalSum(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}

// Q2K super-blocks (BlockQ2K): 8 runs of 32 codes. Per run, u8 codes x s8 activations
// pair up in maddubs and the pairs' int16 sums meet the sub-block scales in madd (the
// low 128-bit lane of a run is one sub-block of 16, the high lane the next), so a run
// costs q4's products; the minimums' term is one product per super-block with the
// activations' sub-block sums (Q2KActivationSums).
// Bytes 2k and 2k+1 of a super-block's scales as int16 lanes: run k's scale vector.
inline constexpr auto kQ2KScaleIndex = [] {
  std::array<std::array<int8_t, 32>, 8> t{};
  for (int k = 0; k < 8; ++k)
    for (int i = 0; i < 32; ++i) t[k][i] = static_cast<int8_t>(i % 2 ? -128 : 2 * k + i / 16);
  return t;
}();

HWY_INLINE __m256i Q2KRunCodes(const BlockQ2K& blk, int k) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs + k / 4 * 32));
  return _mm256_and_si256(_mm256_srl_epi16(raw, _mm_cvtsi32_si128(2 * (k % 4))), _mm256_set1_epi8(3));
}

template <int R, int T>
HWY_INLINE void Q2KTile(const uint8_t* w, int64_t row_bytes, int64_t nb, const BlockQ8A* xq, int64_t xq_stride,
                        const float* sums, int64_t sums_stride, float* y, int64_t ldy, const PrefetchConfig& pf) {
#if QRUN_X86_PAIRS
  using Acc = __m512;
#else
  using Acc = __m256;
#endif
  Acc acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = Acc{};
  TilePrefetch<R> ahead(pf, row_bytes);
  for (int64_t sb = 0; sb * 8 < nb; ++sb) {
    if (pf.level != PrefetchLevel::None) {
      const int64_t pos = sb * static_cast<int64_t>(sizeof(BlockQ2K)), offset = ahead.At(pos);
      for (int r = 0; r < R; ++r) {
        PrefetchRow(w + r * row_bytes + pos + offset, pf.level);
        PrefetchRow(w + r * row_bytes + pos + offset + 64, pf.level);
      }
    }
    const int runs = static_cast<int>(std::min<int64_t>(8, nb - sb * 8));
    const BlockQ2K* blk[R];
    __m128i scales[R];
    float dw[R];
    for (int r = 0; r < R; ++r) {
      blk[r] = reinterpret_cast<const BlockQ2K*>(w + r * row_bytes) + sb;
      scales[r] = _mm_and_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[r]->scales)), _mm_set1_epi8(15));
      dw[r] = HalfToFloat(blk[r]->d);
    }
    const BlockQ8A* a_sb = xq + sb * 8;
    int k = 0;
#if QRUN_X86_PAIRS
    for (; k + 2 <= runs; k += 2) {  // runs k and k+1: the same 32 bytes, two shifts
      const __m512i idx = Halves(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(kQ2KScaleIndex[k].data())),
                                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kQ2KScaleIndex[k + 1].data())));
      const __m512i shifts = _mm512_set_epi64(2 * (k % 4) + 2, 2 * (k % 4) + 2, 2 * (k % 4) + 2, 2 * (k % 4) + 2,
                                              2 * (k % 4), 2 * (k % 4), 2 * (k % 4), 2 * (k % 4));
      __m512i codes[R], scv[R];
      for (int r = 0; r < R; ++r) {
        const __m512i raw = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[r]->qs + k / 4 * 32)));
        codes[r] = _mm512_and_si512(_mm512_srlv_epi64(raw, shifts), _mm512_set1_epi8(3));
        scv[r] = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(scales[r]), idx);
      }
      for (int t = 0; t < T; ++t) {
        const BlockQ8A& a0 = a_sb[t * xq_stride + k];
        const BlockQ8A& a1 = a_sb[t * xq_stride + k + 1];
        const __m512i av = Halves(LoadActivations(a0), LoadActivations(a1));
        const __m512 ad = _mm512_insertf32x8(_mm512_set1_ps(a0.d), _mm256_set1_ps(a1.d), 1);
        for (int r = 0; r < R; ++r) {
          const __m512i sums32 = _mm512_madd_epi16(_mm512_maddubs_epi16(codes[r], av), scv[r]);
          acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums32), _mm512_mul_ps(ad, _mm512_set1_ps(dw[r])), acc[r][t]);
        }
      }
    }
#endif
    for (; k < runs; ++k) {
      const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kQ2KScaleIndex[k].data()));
      __m256i codes[R], scv[R];
      for (int r = 0; r < R; ++r) {
        codes[r] = Q2KRunCodes(*blk[r], k);
        scv[r] = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(scales[r]), idx);
      }
      for (int t = 0; t < T; ++t) {
        const BlockQ8A& a = a_sb[t * xq_stride + k];
        const __m256i av = LoadActivations(a);
        for (int r = 0; r < R; ++r) {
          const __m256i sums32 = _mm256_madd_epi16(_mm256_maddubs_epi16(codes[r], av), scv[r]);
          const __m256 part = _mm256_mul_ps(_mm256_cvtepi32_ps(sums32), _mm256_set1_ps(dw[r] * a.d));
#if QRUN_X86_PAIRS
          acc[r][t] = _mm512_add_ps(acc[r][t], _mm512_castps256_ps512(part));  // upper half of the cast: zero
#else
          acc[r][t] = _mm256_add_ps(acc[r][t], part);
#endif
        }
      }
    }
    // Minimums: - dmin * sum over the 16 sub-blocks of m_s * (activation sum of s).
    for (int r = 0; r < R; ++r) {
      const __m128i m = _mm_and_si128(_mm_srli_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[r]->scales)), 4),
                                      _mm_set1_epi8(15));
      const float dmin = HalfToFloat(blk[r]->dmin);
#if QRUN_X86_PAIRS
      const __m512 mins = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(m)), _mm512_set1_ps(dmin));
      for (int t = 0; t < T; ++t)
        acc[r][t] = _mm512_fnmadd_ps(mins, _mm512_loadu_ps(sums + t * sums_stride + sb * 16), acc[r][t]);
#else
      const __m256 lo = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m)), _mm256_set1_ps(dmin));
      const __m256 hi = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(m, 8))), _mm256_set1_ps(dmin));
      for (int t = 0; t < T; ++t) {
        acc[r][t] = _mm256_fnmadd_ps(lo, _mm256_loadu_ps(sums + t * sums_stride + sb * 16), acc[r][t]);
        acc[r][t] = _mm256_fnmadd_ps(hi, _mm256_loadu_ps(sums + t * sums_stride + sb * 16 + 8), acc[r][t]);
      }
#endif
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
#if QRUN_X86_PAIRS
      y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
#else
      y[t * ldy + r] = HorizontalSum(acc[r][t]);
#endif
    }
}

#if QRUN_X86_PAIRS
template <class Rows>
concept PairedRows = requires(const uint8_t* row) {
  Rows::Prepare2(row_block<typename Rows::Block>(row, 2, 0), row_block<typename Rows::Block>(row, 2, 1));
};

// Tile over pairs of blocks; an odd last block takes the one-block path.
template <class Rows, int R, int T, class D>
HWY_INLINE void TilePairs(const uint8_t* w, int64_t row_bytes, int64_t nb, const BlockQ8A* xq, int64_t xq_stride,
                          float* y, int64_t ldy, const PrefetchConfig& pf) {
  using Block = typename Rows::Block;
  constexpr int32_t kOffset = Rows::kOffset;
  __m512 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  TilePrefetch<R> ahead(pf, row_bytes);
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    __m512i codes[R];
    float dw0[R], dw1[R];
    for (int k = 0; k < 2; ++k) ahead.AtBlock(w, b + k, sizeof(Block), pf.level);
    for (int r = 0; r < R; ++r) {
      const auto& blk0 = row_block<Block>(w + r * row_bytes, nb, b);
      const auto& blk1 = row_block<Block>(w + r * row_bytes, nb, b + 1);
      dw0[r] = HalfToFloat(blk0.d);
      dw1[r] = HalfToFloat(blk1.d);
      codes[r] = Rows::Prepare2(blk0, blk1);
    }
    for (int t = 0; t < T; ++t) {
      const BlockQ8A& a0 = xq[t * xq_stride + b];
      const BlockQ8A& a1 = xq[t * xq_stride + b + 1];
      const __m512i av = Halves(LoadActivations(a0), LoadActivations(a1));
      const __m512i offset = _mm512_mask_set1_epi32(_mm512_maskz_set1_epi32(0x0001, kOffset * a0.sum), 0x0100,
                                                    kOffset * a1.sum);
      for (int r = 0; r < R; ++r) {
        const __m512 sums = _mm512_cvtepi32_ps(D::Acc(offset, codes[r], av));
        const __m512 scale = _mm512_insertf32x8(_mm512_set1_ps(dw0[r] * a0.d), _mm256_set1_ps(dw1[r] * a1.d), 1);
        acc[r][t] = _mm512_fmadd_ps(sums, scale, acc[r][t]);
      }
    }
  }
  for (; b < nb; ++b) {
    for (int r = 0; r < R; ++r) {
      const auto& blk = row_block<Block>(w + r * row_bytes, nb, b);
      const __m256i codes = Rows::Prepare(blk);
      for (int t = 0; t < T; ++t) {
        const BlockQ8A& a = xq[t * xq_stride + b];
        const __m256 sums = _mm256_cvtepi32_ps(Rows::template Dot<D>(codes, a, LoadActivations(a)));
        const __m256 part = _mm256_mul_ps(sums, _mm256_set1_ps(HalfToFloat(blk.d) * a.d));
        acc[r][t] = _mm512_add_ps(acc[r][t], _mm512_castps256_ps512(part));  // upper half of the cast: zero
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}
#endif

#if !QRUN_X86_VNNI
// Tiles on 256-bit vectors for the one-scale-per-block formats of at most 6 bits (Q4,
// Q4N, Q6, Q5, Q3), R rows (a multiple of 4) x T tokens, two blocks at a time. A vector
// holds one row's codes of elements 0-15 (or 16-31) of blocks b and b + 1, one block per
// 128-bit half, so the unpacking and the products run on 64 codes per op; three hadds per
// four rows leave each row-block's sum in one lane (the four rows of block b, then of
// b + 1), where the offset, the scales (eight f16 converted together) and one FMA serve
// all eight. The one-block-per-vector Tile below spends most of its time on scalar scale
// arithmetic per row and block. Zen 5, AVX2 target, kernels_bench, Tile -> this:
// - matvec GB/s in L2 / from DRAM: q4 18.3 -> 26.4-27.7 / 12.3-13.5 -> 21.5-22.5 (eight
//   rows; four gave 25.0 in L2), q4n 15.5 -> 18.7-18.9 / 12.0 -> 16.2-16.5, q6 18.4 ->
//   20.2 / 13.0 -> 17.1, q5 14.0 -> 16.0 / 9.6 -> 13.9, q3 8.9 -> 9.7 / 7.3 -> 7.6 (four
//   rows then; kEightRowMatvec below says which take eight now);
// - prompt tiles (4 rows x 4 tokens against 2 x 4), 2048x2048x64 GFLOP/s: q4 93 -> 127-129,
//   q4n 85-91 -> 99-100, q6 80 -> 96-97, q5 73 -> 91, q3 75 -> 91.
// Q8 keeps Tile: one block per step measured 0.9x of it. AVX-512 without VNNI (AVX3)
// takes this for Q4 and Q4N (q4 matvec in L2 15.2-18.6 -> 25.4-25.9 GB/s, prompt 91 ->
// 128 GFLOP/s) and keeps its 512-bit TilePairs for the split-field types (ahead in L2).
HWY_INLINE __m256i LanePair(const void* lo, const void* hi) {
  const __m128i l = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lo));
  return hi ? _mm256_inserti128_si256(_mm256_castsi128_si256(l), _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1)
            : _mm256_zextsi128_si256(l);
}

// Activations of blocks b, b + 1, one per 128-bit half (elements 0-15 in lo, 16-31 in
// hi), their scales and sums likewise (zero for a missing b + 1). abs_lo/abs_hi are
// |lo|/|hi| for the signed code book, computed once per token rather than per row (the
// compiler drops them where a format does not read them).
struct BlockPairActivations {
  __m256i lo, hi, abs_lo, abs_hi;
  __m256 d;
  __m256i sum;
};

HWY_INLINE BlockPairActivations LoadBlockPairActivations(const BlockQ8A& a0, const BlockQ8A* a1) {
  const __m256i lo = LanePair(a0.qs, a1 ? a1->qs : nullptr), hi = LanePair(a0.qs + 16, a1 ? a1->qs + 16 : nullptr);
  return {lo, hi, _mm256_abs_epi8(lo), _mm256_abs_epi8(hi),
          _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(a0.d)), _mm_set1_ps(a1 ? a1->d : 0.0f), 1),
          _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi32(a0.sum)), _mm_set1_epi32(a1 ? a1->sum : 0), 1)};
}

// Two blocks' fields spread to their codes: lo holds elements 0-15 of block b | of b + 1,
// hi elements 16-31 (q1 null: the b + 1 halves are zero).
struct CodeHalves {
  __m256i lo, hi;
};

// 16 nibble bytes per block (byte j: element j low, j + 16 high), as Q4's qs.
HWY_INLINE CodeHalves SplitNibbles(__m256i q) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  return {_mm256_and_si256(q, low4), _mm256_and_si256(_mm256_srli_epi16(q, 4), low4)};
}
HWY_INLINE CodeHalves NibbleHalves(const uint8_t* q0, const uint8_t* q1) { return SplitNibbles(LanePair(q0, q1)); }

// The split-field types' fields of blocks b and b + 1 lie back to back in their group
// (BlockGroup), so one load takes both fields (one without b + 1) where a load per block
// and an insert were: matvec in L2, GB/s, q3 7.6-9.7 -> 10.1-10.9, q5 14.5-16.1 ->
// 16.1-17.5, q6 15.5-19.8 -> 21.0-23.0; prompt q3/q5/q6 +7-10% (Zen 5, AVX2, 3 rounds).
HWY_INLINE CodeHalves NibbleRun(const uint8_t* q, bool pair) {
  return SplitNibbles(pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q))
                           : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q))));
}

// 8 bytes of pairs per block (byte j: elements j, j + 8, j + 16, j + 24 in bits 0, 2, 4,
// 6), as BlockQ6::qh, each pair moved by the shifts themselves to bits kAt, kAt + 1 of its
// byte (Q6 puts them above its nibbles: kAt 4, two fewer shifts than moving them after).
template <int kAt>
HWY_INLINE CodeHalves PairRun(const uint8_t* q, bool pair) {
  static_assert(kAt == 0 || kAt == 4);
  const __m128i v = pair ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(q))
                         : _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
  const __m256i both = _mm256_permute4x64_epi64(_mm256_castsi128_si256(v), 0x50), mask = _mm256_set1_epi8(3 << kAt);
  const __m256i lo = kAt == 0 ? _mm256_srlv_epi64(both, _mm256_set_epi64x(2, 0, 2, 0))
                              : _mm256_sllv_epi64(both, _mm256_set_epi64x(2, 4, 2, 4));
  const __m256i hi = _mm256_srlv_epi64(both, _mm256_set_epi64x(6 - kAt, 4 - kAt, 6 - kAt, 4 - kAt));
  return {_mm256_and_si256(lo, mask), _mm256_and_si256(hi, mask)};
}

// 4 bytes of bits per block (bit j: element j) as bytes 0 or `value`.
HWY_INLINE CodeHalves BitRun(const uint8_t* q, bool pair, char value) {
  int64_t both;
  if (pair) {
    __builtin_memcpy(&both, q, 8);
  } else {
    uint32_t one;
    __builtin_memcpy(&one, q, 4);
    both = one;
  }
  const __m256i words = _mm256_set1_epi64x(both);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201)), v = _mm256_set1_epi8(value);
  const auto spread = [&](int64_t first) {  // bytes `first`, `first` + 1 of block b's word | b + 1's, eight times each
    const __m256i idx = _mm256_set_epi64x(0x0101010101010101 * (first + 5), 0x0101010101010101 * (first + 4),
                                          0x0101010101010101 * (first + 1), 0x0101010101010101 * first);
    const __m256i bytes = _mm256_shuffle_epi8(words, idx);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit), v);
  };
  return {spread(0), spread(2)};
}

HWY_INLINE CodeHalves Or(const CodeHalves& a, const CodeHalves& b) {
  return {_mm256_or_si256(a.lo, b.lo), _mm256_or_si256(a.hi, b.hi)};
}

// Where block b's fields lie in a row (bytes from its start), computed once per step
// for all rows. Split-field rows group blocks by four from block 0, so for even b,
// block b + 1 is the next one in the same group.
struct BlockFields {
  int64_t d, low, high;
};
template <class Block>
HWY_INLINE BlockFields FieldsOf(int64_t nb, int64_t b) {
  if constexpr (SplitBlock<Block>) {
    const BlockGroup<Block> g(nb, b);
    const int64_t i = b % BlockGroup<Block>::kBlocks;
    return {g.d(i), g.low(i), g.high(i)};
  } else {
    const int64_t at = b * static_cast<int64_t>(sizeof(Block));
    return {at, at + 2, 0};
  }
}
template <class Block>
HWY_INLINE BlockFields NextFields(const BlockFields& f) {
  if constexpr (SplitBlock<Block>)
    return {f.d + 2, f.low + SplitFields<Block>::kLow, f.high + SplitFields<Block>::kHigh};
  else
    return {f.d + static_cast<int64_t>(sizeof(Block)), f.low + static_cast<int64_t>(sizeof(Block)), 0};
}

// Unsigned codes with an offset (x = d * (code + kOffset)): the int16 pair sums of both
// halves fit int16 (at most 4 * 63 * 127 for Q6's codes), so they add before widening.
template <class B, int32_t kOffset_>
struct UnsignedPairs {
  using Block = B;
  static constexpr int32_t kOffset = kOffset_;
  template <class D>
  static HWY_INLINE __m256i Dot(const CodeHalves& c, const BlockPairActivations& a) {
    if constexpr (D::kVnni) {
      return D::Acc(D::Acc(_mm256_setzero_si256(), c.lo, a.lo), c.hi, a.hi);
    } else {
      static_assert(kOffset > -128, "codes of 8 bits would saturate the int16 pair sums");
      const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(c.lo, a.lo), _mm256_maddubs_epi16(c.hi, a.hi));
      return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
    }
  }
};

// Codes(row, f0, f1, pair): the codes of blocks b (fields f0) and b + 1 (f1, when pair).
struct Q4BlockPairs : UnsignedPairs<BlockQ4, -8> {
  static HWY_INLINE CodeHalves Codes(const uint8_t* row, const BlockFields& f0, const BlockFields& f1, bool pair) {
    return NibbleHalves(row + f0.low, pair ? row + f1.low : nullptr);
  }
};

struct Q6BlockPairs : UnsignedPairs<BlockQ6, -32> {
  static HWY_INLINE CodeHalves Codes(const uint8_t* row, const BlockFields& f0, const BlockFields&, bool pair) {
    return Or(NibbleRun(row + f0.low, pair), PairRun<4>(row + f0.high, pair));
  }
};

struct Q5BlockPairs : UnsignedPairs<BlockQ5, -16> {
  static HWY_INLINE CodeHalves Codes(const uint8_t* row, const BlockFields& f0, const BlockFields&, bool pair) {
    return Or(NibbleRun(row + f0.low, pair), BitRun(row + f0.high, pair, 0x10));
  }
};

struct Q3BlockPairs : UnsignedPairs<BlockQ3, -4> {
  static HWY_INLINE CodeHalves Codes(const uint8_t* row, const BlockFields& f0, const BlockFields&, bool pair) {
    return Or(PairRun<0>(row + f0.low, pair), BitRun(row + f0.high, pair, 0x04));
  }
};

// Signed code-book levels take the sign trick with the roles turned: |activation| as
// the unsigned operand (once per token, shared by the rows) and the level carrying the
// activation's sign, so each row pays one vpsignb per half instead of vpabsb and vpsignb.
// Their int16 pair sums (up to 2 * 127 * 127) leave no room to add the halves before
// widening.
template <class B>
struct CodeBookBlockPairs {
  using Block = B;
  static constexpr int32_t kOffset = 0;
  static HWY_INLINE CodeHalves Codes(const uint8_t* row, const BlockFields& f0, const BlockFields& f1, bool pair) {
    const CodeHalves n = NibbleHalves(row + f0.low, pair ? row + f1.low : nullptr);
    const __m256i table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kCodeBook<B>)));
    return {_mm256_shuffle_epi8(table, n.lo), _mm256_shuffle_epi8(table, n.hi)};
  }
  template <class D>
  static HWY_INLINE __m256i Dot(const CodeHalves& c, const BlockPairActivations& a) {
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i lo = _mm256_maddubs_epi16(a.abs_lo, _mm256_sign_epi8(c.lo, a.lo));
    const __m256i hi = _mm256_maddubs_epi16(a.abs_hi, _mm256_sign_epi8(c.hi, a.hi));
    return _mm256_add_epi32(_mm256_madd_epi16(lo, ones), _mm256_madd_epi16(hi, ones));
  }
};

// With vpdpbusd the levels enter as unsigned bytes, level + 128 (the table's bytes with
// the top bit flipped), and -128 * sum corrects them: no abs or sign per row and token.
template <class B>
struct CodeBookOffsetPairs : UnsignedPairs<B, -128> {
  static HWY_INLINE CodeHalves Codes(const uint8_t* row, const BlockFields& f0, const BlockFields& f1, bool pair) {
    const CodeHalves n = NibbleHalves(row + f0.low, pair ? row + f1.low : nullptr);
    const __m256i table = _mm256_xor_si256(
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kCodeBook<B>))), _mm256_set1_epi8(-128));
    return {_mm256_shuffle_epi8(table, n.lo), _mm256_shuffle_epi8(table, n.hi)};
  }
};

// The f16 scales of four rows (at `first` bytes into each, then at `second` unless it is
// negative: zero) in words 0-3 and 4-7. Word indices must be constants, so no loop.
HWY_INLINE __m128i FourRowScales(const uint8_t* rows, int64_t row_bytes, int64_t first, int64_t second) {
  const auto at = [&](int r, int64_t offset) {
    uint16_t d;
    __builtin_memcpy(&d, rows + r * row_bytes + offset, 2);
    return d;
  };
  __m128i v = _mm_cvtsi32_si128(at(0, first));
  v = _mm_insert_epi16(v, at(1, first), 1);
  v = _mm_insert_epi16(v, at(2, first), 2);
  v = _mm_insert_epi16(v, at(3, first), 3);
  if (second < 0) return v;
  v = _mm_insert_epi16(v, at(0, second), 4);
  v = _mm_insert_epi16(v, at(1, second), 5);
  v = _mm_insert_epi16(v, at(2, second), 6);
  return _mm_insert_epi16(v, at(3, second), 7);
}

// R rows (a multiple of 4) x T tokens; y[t * ldy + r].
template <class Pairs, int R, int T, class D>
HWY_INLINE void BlockPairTile(const uint8_t* w, int64_t row_bytes, int64_t nb, const BlockQ8A* xq, int64_t xq_stride,
                              float* y, int64_t ldy, const PrefetchConfig& pf) {
  static_assert(R % 4 == 0);
  using Block = typename Pairs::Block;
  __m256 acc[R / 4][T];
  for (auto& row : acc)
    for (auto& a : row) a = _mm256_setzero_ps();
  TilePrefetch<R> ahead(pf, row_bytes);
  // `pair` is a constant in each instance, so the steady loop has no branch per row for
  // a missing block b + 1.
  const auto step = [&](int64_t b, auto pair) HWY_ATTR {
    ahead.AtBlock(w, b / 2, 2 * sizeof(Block), pf.level);
    const BlockFields f0 = FieldsOf<Block>(nb, b), f1 = NextFields<Block>(f0);
    BlockPairActivations a[T];
    for (int t = 0; t < T; ++t) a[t] = LoadBlockPairActivations(xq[t * xq_stride + b], pair ? &xq[t * xq_stride + b + 1] : nullptr);
    for (int g = 0; g < R / 4; ++g) {
      const uint8_t* group = w + 4 * g * row_bytes;
      CodeHalves codes[4];
      for (int i = 0; i < 4; ++i) {
        const uint8_t* row = group + i * row_bytes;
        codes[i] = Pairs::Codes(row, f0, f1, pair);
      }
      const __m256 dw = _mm256_cvtph_ps(FourRowScales(group, row_bytes, f0.d, pair ? f1.d : -1));
      for (int t = 0; t < T; ++t) {
        __m256i sums[4];
        for (int i = 0; i < 4; ++i) sums[i] = Pairs::template Dot<D>(codes[i], a[t]);
        // Lanes: the four rows in block b | in block b + 1.
        __m256i dots = _mm256_hadd_epi32(_mm256_hadd_epi32(sums[0], sums[1]), _mm256_hadd_epi32(sums[2], sums[3]));
        if constexpr (Pairs::kOffset != 0)
          dots = _mm256_add_epi32(dots, _mm256_mullo_epi32(a[t].sum, _mm256_set1_epi32(Pairs::kOffset)));
        acc[g][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(dw, a[t].d), acc[g][t]);
      }
    }
  };
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) step(b, std::true_type{});
  if (b < nb) step(b, std::false_type{});
  for (int g = 0; g < R / 4; ++g)
    for (int t = 0; t < T; ++t) {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, acc[g][t]);
      for (int i = 0; i < 4; ++i) y[t * ldy + 4 * g + i] = lanes[i] + lanes[4 + i];
    }
}

template <class Rows, class D> struct BlockPairsOf { using type = void; };
template <class D> struct BlockPairsOf<Q4Rows, D> { using type = Q4BlockPairs; };
template <class B, class D> struct BlockPairsOf<CodeBookRows<B>, D> {
  using type = std::conditional_t<D::kVnni, CodeBookOffsetPairs<B>, CodeBookBlockPairs<B>>;
};
template <class D> struct BlockPairsOf<Q6Rows, D> { using type = Q6BlockPairs; };
template <class D> struct BlockPairsOf<Q5Rows, D> { using type = Q5BlockPairs; };
template <class D> struct BlockPairsOf<Q3Rows, D> { using type = Q3BlockPairs; };
#endif

// y[t * ldy + r] = dot(row r, token t) for r < R, t < T. Act: BlockQ8A, or BlockQ16A
// for Q8Rows. D: MaddubsDot or VnniDot.
template <class Rows, int R, int T, class D, class Act>
HWY_INLINE void Tile(const uint8_t* w, int64_t row_bytes, int64_t nb, const Act* xq, int64_t xq_stride,
                     float* y, int64_t ldy, const PrefetchConfig& pf) {
#if QRUN_X86_PAIRS
  if constexpr (PairedRows<Rows> && std::is_same_v<Act, BlockQ8A>)
    return TilePairs<Rows, R, T, D>(w, row_bytes, nb, xq, xq_stride, y, ldy, pf);
#endif
#if !QRUN_X86_VNNI
  if constexpr (!std::is_void_v<typename BlockPairsOf<Rows, D>::type> && std::is_same_v<Act, BlockQ8A> && R % 4 == 0)
    return BlockPairTile<typename BlockPairsOf<Rows, D>::type, R, T, D>(w, row_bytes, nb, xq, xq_stride, y, ldy, pf);
#endif
  using Block = typename Rows::Block;
  __m256 acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
  TilePrefetch<R> ahead(pf, row_bytes);
  for (int64_t b = 0; b < nb; ++b) {
    typename Rows::Prepared prepared[R];
    float dw[R];
    ahead.AtBlock(w, b, sizeof(Block), pf.level);
    for (int r = 0; r < R; ++r) {
      const auto& blk = row_block<Block>(w + r * row_bytes, nb, b);
      dw[r] = HalfToFloat(blk.d);
      prepared[r] = Rows::Prepare(blk);
    }
    for (int t = 0; t < T; ++t) {
      const Act& a = xq[t * xq_stride + b];
      const auto av = LoadActivations(a);
      for (int r = 0; r < R; ++r) {
        const __m256 sums = _mm256_cvtepi32_ps(Rows::template Dot<D>(prepared[r], a, av));
        acc[r][t] = _mm256_fmadd_ps(sums, _mm256_set1_ps(dw[r] * a.d), acc[r][t]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = HorizontalSum(acc[r][t]);
}

// AVX2 has 16 vector registers: 2 rows x 4 tokens of accumulators leaves room for the
// operands. AVX-512 targets have 32.
#if HWY_TARGET == HWY_AVX2
inline constexpr int kTileRows = 2;
#else
inline constexpr int kTileRows = 4;
#endif
inline constexpr int kTileTokens = qrun::kTileTokens;
inline constexpr int kMatvecRows = 4;
#if QRUN_X86_VNNI
template <class Rows>
inline constexpr int kMatvecRowsOf = kMatvecRows;
template <class Rows>
inline constexpr int kTileRowsOf = kTileRows;
#else
// BlockPairTile: a matvec shares each step's activation work among eight rows; its
// prompt tiles read four rows (its unit) on AVX2 too. Zen 5, AVX2, matvec from DRAM,
// 4 -> 8 rows: q4 (as before), q4n 13.5 -> 17.5 GB/s, q6 16.7 -> 18.8, q3 7.8 -> 8.3;
// q5 14.6 -> 13.2 keeps 4. AVX3 runs Q6, Q5 and Q3 as TilePairs.
template <class Rows>
inline constexpr bool kEightRowMatvec =
    std::is_same_v<Rows, Q4Rows> || std::is_same_v<Rows, Q4NRows> || std::is_same_v<Rows, Mx4Rows> ||
    (HWY_TARGET == HWY_AVX2 && (std::is_same_v<Rows, Q6Rows> || std::is_same_v<Rows, Q3Rows>));
template <class Rows>
inline constexpr int kMatvecRowsOf = kEightRowMatvec<Rows> ? 8 : kMatvecRows;
template <class Rows>
inline constexpr int kTileRowsOf = std::is_void_v<typename BlockPairsOf<Rows, MaddubsDot>::type> ? kTileRows : 4;
#endif

#if QRUN_X86_VNNI
// AVX3_DL: 512-bit vpdpbusd over the weight rows as they lie in memory. A row is read
// as a byte stream in 64-byte chunks (the last one with a masked load); nothing is
// shuffled on the weight side except the nibble split. Instead the activations are laid
// out once per call in the same stream layout ("stream activations"): at each byte
// position that holds a weight code, the activation that multiplies it; at the f16
// scale bytes, 0. Each int32 lane (4 bytes) then holds codes of exactly one block (a
// block is 18 or 34 bytes, so a lane that straddles two blocks holds 2 code bytes of
// one and the 2 scale bytes of the next, whose activations are 0). Per lane we also
// lay out the block's activation scale and, in one lane per block, the exact int32
// offset correction (Q4: -8 * sum for the code offset; Q8: -128 * sum because the
// weights enter as the unsigned w + 128 = w ^ 0x80). A vpermt2w per chunk gathers each
// lane's f16 weight scale from this chunk or the previous one (a block is < 64 bytes).
// So per 64 weight bytes and row: 1 load, 1-3 unpack ops, vpermt2w, vcvtph2ps; per row
// and token: 1-2 vpdpbusd, one multiply of scales, one conversion and one FMA.
// Each block's lanes are exact int32 sums of its products (as in the reference); the
// f32 scaling is distributed over the lanes, which only changes f32 rounding.
namespace stream {

struct Q4Format {
  using Block = BlockQ4;
  using Act = BlockQ8A;
  static constexpr int kBlockBytes = sizeof(BlockQ4);
  static constexpr int kParts = 2;  // low nibbles, high nibbles
  static constexpr int32_t kOffset = -8;
  static constexpr int kPeriod = 9;  // chunks in 32 blocks (576 bytes)
  static constexpr bool kOneRowMatvec = false;  // one row is compute bound (PrefetchConfig::matvec_rows)
  static HWY_INLINE void SetActivations(const BlockQ8A& a, int8_t* const* parts, int64_t pos) {
    __builtin_memcpy(parts[0] + pos, a.qs, 16);
    __builtin_memcpy(parts[1] + pos, a.qs + 16, 16);
  }
  struct Unpacked {
    __m512i lo, hi;
  };
  static HWY_INLINE Unpacked Unpack(__m512i raw) {
    const __m512i mask = _mm512_set1_epi8(0x0F);
    return {_mm512_and_si512(raw, mask), _mm512_and_si512(_mm512_srli_epi16(raw, 4), mask)};
  }
  // a: this chunk's activations in part 0; part p lies p * part_bytes further.
  static HWY_INLINE __m512i Dot(__m512i acc, const Unpacked& w, const int8_t* a, int64_t part_bytes) {
    acc = _mm512_dpbusd_epi32(acc, w.lo, _mm512_load_si512(a));
    return _mm512_dpbusd_epi32(acc, w.hi, _mm512_load_si512(a + part_bytes));
  }
};

// Q4N: the nibbles index the code book's levels + 128 (u8); -128 * sum enters the sums
// as for Q8. vpermb (AVX3_DL has VBMI) reads an index's low 6 bits, so with the 16 levels
// repeated four times the byte itself indexes its low nibble and the byte shifted right
// by 4 its high one: no masking, three ops where the nibble split and two vpshufb took
// five (Zen 4, tinyllama q4m decode on one thread: README, Speed).
template <class B>
struct CodeBookFormat : Q4Format {
  using Block = B;
  static constexpr int32_t kOffset = -128;
  static HWY_INLINE Unpacked Unpack(__m512i raw) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_xor_si128(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(kCodeBook<B>)), _mm_set1_epi8(char(0x80))));
    return {_mm512_permutexvar_epi8(raw, table), _mm512_permutexvar_epi8(_mm512_srli_epi16(raw, 4), table)};
  }
};
using Q4NFormat = CodeBookFormat<BlockQ4N>;
using Mx4Format = CodeBookFormat<BlockMx4>;

struct Q8Format {
  using Block = BlockQ8;
  using Act = BlockQ8A;
  static constexpr int kBlockBytes = sizeof(BlockQ8);
  static constexpr int kParts = 1;
  static constexpr int32_t kOffset = -128;
  static constexpr int kPeriod = 17;  // chunks in 32 blocks (1088 bytes)
  static constexpr bool kOneRowMatvec = true;
  static HWY_INLINE void SetActivations(const BlockQ8A& a, int8_t* const* parts, int64_t pos) {
    __builtin_memcpy(parts[0] + pos, a.qs, 32);
  }
  using Unpacked = __m512i;  // w + 128 as u8
  static HWY_INLINE Unpacked Unpack(__m512i raw) { return _mm512_xor_si512(raw, _mm512_set1_epi8(char(0x80))); }
  static HWY_INLINE __m512i Dot(__m512i acc, const Unpacked& w, const int8_t* a, int64_t) {
    return _mm512_dpbusd_epi32(acc, w, _mm512_load_si512(a));
  }
};

// Q8 with 16-bit activations: their high bytes in part 0, low bytes in part 1; per
// lane 128 * hi_dot + lo_dot + offset (|128 * hi_dot| <= 2^7 * 4 * 255 * 127, the
// offset -128 * sum <= 2^7 * 32 * 16256 in magnitude: no int32 overflow).
struct Q8WideFormat : Q8Format {
  using Act = BlockQ16A;
  static constexpr int kParts = 2;
  static HWY_INLINE void SetActivations(const BlockQ16A& a, int8_t* const* parts, int64_t pos) {
    __builtin_memcpy(parts[0] + pos, a.hi, 32);
    __builtin_memcpy(parts[1] + pos, a.lo, 32);
  }
  static HWY_INLINE __m512i Dot(__m512i acc, const Unpacked& w, const int8_t* a, int64_t part_bytes) {
    const __m512i hi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_load_si512(a));
    return _mm512_add_epi32(_mm512_slli_epi32(hi, 7), _mm512_dpbusd_epi32(acc, w, _mm512_load_si512(a + part_bytes)));
  }
};

// Scratch layout per token:
// parts (kParts x nc x 64 i8), offsets (nc x 16 i32), activation scales (nc x 16 f32).
template <class Fmt>
struct Layout {
  int64_t nb, row_bytes, nc;
  __mmask64 last_mask;
  int64_t token_bytes;
  explicit Layout(int64_t cols) {
    nb = q8a_blocks(cols);
    row_bytes = nb * Fmt::kBlockBytes;
    nc = (row_bytes + 63) / 64;
    const int64_t last = row_bytes - (nc - 1) * 64;
    last_mask = last >= 64 ? ~__mmask64{0} : ((__mmask64{1} << last) - 1);
    token_bytes = nc * 64 * (Fmt::kParts + 2);
  }
};

template <class Fmt>
HWY_INLINE void LaneRange(int64_t b, int64_t& first, int64_t& last) {
  const int64_t start = b * Fmt::kBlockBytes;
  first = (start + 2) / 4;
  last = (start + Fmt::kBlockBytes - 1) / 4;
}

// The block / chunk pattern repeats every kPeriod chunks (32 blocks), so the vpermt2w
// indices are one small table per format. A lane past the row end belongs to a block
// b >= nb whose scale bytes lie past the row end in the same (masked, zero) chunk.
template <class Fmt>
const uint16_t* PeriodIndices() {
  struct Table {
    alignas(64) uint16_t idx[Fmt::kPeriod * 32] = {};
    Table() {
      for (int64_t b = 0; b < 32; ++b) {
        int64_t first, last;
        LaneRange<Fmt>(b, first, last);
        const int64_t word = b * Fmt::kBlockBytes / 2;
        for (int64_t lane = first; lane <= last; ++lane) {
          const int64_t c = lane / 16;
          idx[c * 32 + lane % 16] = uint16_t(word / 32 == c ? word % 32 : 32 + word % 32);
        }
      }
    }
  };
  static const Table table;
  return table.idx;
}

template <class Fmt>
void PrepareToken(const Layout<Fmt>& L, const typename Fmt::Act* xq, uint8_t* out) {
  __builtin_memset(out, 0, static_cast<size_t>(L.token_bytes));
  int8_t* parts[Fmt::kParts];
  for (int p = 0; p < Fmt::kParts; ++p) parts[p] = reinterpret_cast<int8_t*>(out + p * L.nc * 64);
  auto* off = reinterpret_cast<int32_t*>(out + Fmt::kParts * L.nc * 64);
  auto* da = reinterpret_cast<float*>(out + (Fmt::kParts + 1) * L.nc * 64);
  for (int64_t b = 0; b < L.nb; ++b) {
    const auto& a = xq[b];
    Fmt::SetActivations(a, parts, b * Fmt::kBlockBytes + 2);
    const int64_t first = (b * Fmt::kBlockBytes + 2) / 4;
    off[first] = Fmt::kOffset * a.sum;
    // A block has <= 9 lanes: fill 16 from its first; the next block overwrites the
    // excess. After the last block this spills up to 15 lanes past the row (harmless
    // finite values: those lanes' products and weight scales are 0) and past the token
    // (the next token is laid out later; the buffer is padded).
    _mm512_storeu_ps(da + first, _mm512_set1_ps(a.d));
  }
}

// One chunk of an R x T tile; ci: the chunk's index in the period.
template <class Fmt, int R, int T, bool kLast>
HWY_INLINE void Chunk(const uint8_t* w, int64_t row_bytes, int64_t c, __mmask64 last_mask, const uint16_t* idx,
                      int64_t ci, const uint8_t* tok, int64_t tok_stride, int64_t nc, PrefetchLevel pf_level,
                      int64_t pf_offset, __m512i (&prev)[R], __m512 (&acc)[R][T]) {
  const __m512i vidx = _mm512_load_si512(idx + ci * 32);
  const int64_t part_bytes = nc * 64;
  typename Fmt::Unpacked unpacked[R];
  __m512 dw[R];
  for (int r = 0; r < R; ++r) {
    const uint8_t* p = w + r * row_bytes + c * 64;
    PrefetchRow(p + pf_offset, pf_level);
    const __m512i raw = kLast ? _mm512_maskz_loadu_epi8(last_mask, p) : _mm512_loadu_si512(p);
    // Matvec keeps each row's previous chunk in a register; token tiles, whose
    // accumulators fill the register file, reload it from L1 instead (Zen 5,
    // kernels_bench prompt tiles: q4 254 -> 276-284 GFLOP/s).
    __m512i before;
    if constexpr (T == 1) {
      before = prev[r];
      prev[r] = raw;
    } else {
      before = c == 0 ? _mm512_setzero_si512() : _mm512_loadu_si512(p - 64);
    }
    dw[r] = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(raw, vidx, before)));
    unpacked[r] = Fmt::Unpack(raw);
  }
  for (int t = 0; t < T; ++t) {
    const uint8_t* tc = tok + t * tok_stride;
    const int8_t* a = reinterpret_cast<const int8_t*>(tc + c * 64);
    const __m512i off = _mm512_load_si512(tc + (Fmt::kParts * nc + c) * 64);
    const __m512 da = _mm512_load_ps(tc + ((Fmt::kParts + 1) * nc + c) * 64);
    for (int r = 0; r < R; ++r) {
      const __m512i dot = Fmt::Dot(off, unpacked[r], a, part_bytes);
      acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(dw[r], da), acc[r][t]);
    }
  }
}

template <class Fmt, int R, int T>
HWY_NOINLINE void Tile(const uint8_t* w, const Layout<Fmt>& L, const uint16_t* idx, const uint8_t* tok,
                       float* y, int64_t ldy, const PrefetchConfig& pf) {
  __m512 acc[R][T];
  __m512i prev[R];
  for (int r = 0; r < R; ++r) {
    prev[r] = _mm512_setzero_si512();
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  }
  const int64_t nc = L.nc;
  TilePrefetch<R> ahead(pf, L.row_bytes);
  int64_t ci = 0;  // c modulo the index period
  for (int64_t c = 0; c + 1 < nc; ++c) {
    Chunk<Fmt, R, T, false>(w, L.row_bytes, c, L.last_mask, idx, ci, tok, L.token_bytes, nc, pf.level,
                            ahead.At(c * 64), prev, acc);
    if (++ci == Fmt::kPeriod) ci = 0;
  }
  Chunk<Fmt, R, T, true>(w, L.row_bytes, nc - 1, L.last_mask, idx, ci, tok, L.token_bytes, nc, pf.level,
                         ahead.At((nc - 1) * 64), prev, acc);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

// 4 x 4: 16 f32 accumulators + 3 registers per row of unpacked weights and scales
// (measured best among 4x4, 3x6, 2x8; matvec uses the 4 x 1 tile).
inline constexpr int kTileRows = 4;
inline constexpr int kTileTokens = qrun::kTileTokens;

struct AlignedFree {
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
};

// Per-thread scratch, grown as needed.
inline uint8_t* Scratch(size_t bytes) {
  thread_local std::unique_ptr<uint8_t[], AlignedFree> buf;
  thread_local size_t cap = 0;
  if (bytes > cap) {
    buf.reset(new (std::align_val_t{64}) uint8_t[bytes]);
    cap = bytes;
  }
  return buf.get();
}

// Calls tile.template operator()<R, T>(first row, first token) over all rows and n
// tokens, rows outer: a tile's weight rows stay in L1 while all tokens' activations
// stream from L2.
template <int kRows, int kTokens, class TileAt>
HWY_INLINE void ForEachTileRowsOuter(int64_t rows, int64_t n, bool one_row_matvec, TileAt&& tile) {
  if (n == 1 && one_row_matvec) {  // PrefetchConfig::matvec_rows
    for (int64_t r = 0; r < rows; ++r) tile.template operator()<1, 1>(r, 0);
    return;
  }
  const int64_t n_full = n - n % kTokens;
  int64_t r = 0;
  for (; r + kRows <= rows; r += kRows) {
    for (int64_t t = 0; t < n_full; t += kTokens) tile.template operator()<kRows, kTokens>(r, t);
    for (int64_t t = n_full; t < n; ++t) tile.template operator()<kRows, 1>(r, t);
  }
  for (; r < rows; ++r) {
    for (int64_t t = 0; t < n_full; t += kTokens) tile.template operator()<1, kTokens>(r, t);
    for (int64_t t = n_full; t < n; ++t) tile.template operator()<1, 1>(r, t);
  }
}

template <class Fmt>
HWY_INLINE void MatMul(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const typename Fmt::Act* xq, float* y,
                       int64_t ldy) {
  if (rows <= 0 || n <= 0) return;
  const Layout<Fmt> L(cols);
  // + 64: PrepareToken's last scale store may spill past the last token.
  uint8_t* toks = Scratch(static_cast<size_t>(n * L.token_bytes + 64));
  for (int64_t t = 0; t < n; ++t) PrepareToken(L, xq + t * L.nb, toks + t * L.token_bytes);
  const uint16_t* idx = PeriodIndices<Fmt>();
  const PrefetchConfig pf = prefetch_config_for(kWideBlock<typename Fmt::Block>);
  const int64_t rb = L.row_bytes;
  const bool one_row = Fmt::kOneRowMatvec && pf.matvec_rows == 1;
  ForEachTileRowsOuter<kTileRows, kTileTokens>(rows, n, one_row, [&]<int R, int T>(int64_t r, int64_t t) {
    Tile<Fmt, R, T>(w + r * rb, L, idx, toks + t * L.token_bytes, y + t * ldy + r, ldy, pf);
  });
}

}  // namespace stream
#endif  // QRUN_X86_VNNI

#else  // portable Highway path

// Exact int32 dot product of 32 int8 pairs: widen to int16, multiply pairwise into int32.
HWY_INLINE int32_t DotI8(const int8_t* w, const int8_t* a) {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  auto sum0 = hn::Zero(d32), sum1 = hn::Zero(d32);
  for (size_t i = 0; i < 32; i += hn::Lanes(d16)) {
    const auto wv = hn::PromoteTo(d16, hn::LoadU(d8, w + i));
    const auto av = hn::PromoteTo(d16, hn::LoadU(d8, a + i));
    sum0 = hn::ReorderWidenMulAccumulate(d32, wv, av, sum0, sum1);
  }
  return hn::GetLane(hn::SumOfLanes(d32, hn::Add(sum0, sum1)));
}

HWY_INLINE int32_t ActivationDot(const int8_t* w, const BlockQ8A& a) { return DotI8(w, a.qs); }
HWY_INLINE int32_t ActivationDot(const int8_t* w, const BlockQ16A& a) { return 128 * DotI8(w, a.hi) + DotI8(w, a.lo); }

struct Q4Rows {
  using Block = BlockQ4;
  struct Prepared {
    HWY_ALIGN int8_t q[32];  // code - 8
  };
  static HWY_INLINE void Prepare(const BlockQ4& b, Prepared& p) {
    for (int j = 0; j < 16; ++j) {
      p.q[j] = static_cast<int8_t>((b.qs[j] & 0x0F) - 8);
      p.q[j + 16] = static_cast<int8_t>((b.qs[j] >> 4) - 8);
    }
  }
};

struct Q8Rows {
  using Block = BlockQ8;
  struct Prepared {
    HWY_ALIGN int8_t q[32];
  };
  static HWY_INLINE void Prepare(const BlockQ8& b, Prepared& p) {
    for (int j = 0; j < 32; ++j) p.q[j] = b.qs[j];
  }
};

// Other formats: each element's int8 value as the block format defines it.
template <class B>
struct ValueRows {
  using Block = B;
  struct Prepared {
    HWY_ALIGN int8_t q[32];
  };
  template <class BlockView>
  static HWY_INLINE void Prepare(const BlockView& b, Prepared& p) {
    for (int j = 0; j < 32; ++j) p.q[j] = static_cast<int8_t>(block_value(b, j));
  }
};
using Q4NRows = ValueRows<BlockQ4N>;
using Mx4Rows = ValueRows<BlockMx4>;
using Q6Rows = ValueRows<BlockQ6>;
using Q5Rows = ValueRows<BlockQ5>;
using Q3Rows = ValueRows<BlockQ3>;

// Q2K run k of a super-block times an activation block: sum of sc * code * a, exact in
// int32. Each vector of int16 lanes (at most 16) lies within one sub-block of 16.
HWY_INLINE int32_t Q2KRunDot(const BlockQ2K& blk, int64_t k, const int8_t* a) {
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const uint8_t* bytes = blk.qs + k / 4 * 32;
  const int shift = static_cast<int>(2 * (k % 4));
  auto sum0 = hn::Zero(d32), sum1 = hn::Zero(d32);
  for (size_t i = 0; i < 32; i += hn::Lanes(d16)) {
    const auto raw = hn::BitCast(d16, hn::PromoteTo(hn::RebindToUnsigned<decltype(d16)>(), hn::LoadU(du8, bytes + i)));
    const auto codes = hn::And(hn::ShiftRightSame(raw, shift), hn::Set(d16, 3));
    const auto scaled = hn::Mul(codes, hn::Set(d16, static_cast<int16_t>(blk.scales[2 * k + i / 16] & 15)));
    sum0 = hn::ReorderWidenMulAccumulate(d32, scaled, hn::PromoteTo(d16, hn::LoadU(d8, a + i)), sum0, sum1);
  }
  return hn::GetLane(hn::SumOfLanes(d32, hn::Add(sum0, sum1)));
}

// Q2K super-blocks: the runs' scaled codes (Q2KRunDot); the minimums' term per
// super-block from the activations' sub-block sums (Q2KActivationSums).
template <int R, int T>
HWY_INLINE void Q2KTile(const uint8_t* w, int64_t row_bytes, int64_t nb, const BlockQ8A* xq, int64_t xq_stride,
                        const float* sums, int64_t sums_stride, float* y, int64_t ldy, const PrefetchConfig&) {
  float acc[R][T] = {};
  for (int64_t sb = 0; sb * 8 < nb; ++sb) {
    const int64_t runs = std::min<int64_t>(8, nb - sb * 8);
    for (int r = 0; r < R; ++r) {
      const BlockQ2K& blk = reinterpret_cast<const BlockQ2K*>(w + r * row_bytes)[sb];
      const float dw = f16_to_f32(blk.d), dmin = f16_to_f32(blk.dmin);
      for (int64_t k = 0; k < runs; ++k) {
        for (int t = 0; t < T; ++t) {
          const BlockQ8A& a = xq[t * xq_stride + sb * 8 + k];
          acc[r][t] += dw * a.d * static_cast<float>(Q2KRunDot(blk, k, a.qs));
        }
      }
      for (int t = 0; t < T; ++t) {
        float m = 0.0f;
        for (int s = 0; s < 16; ++s) m += static_cast<float>(blk.scales[s] >> 4) * sums[t * sums_stride + sb * 16 + s];
        acc[r][t] -= dmin * m;
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = acc[r][t];
}

struct PortableDot {};
using BaseDot = PortableDot;

// D: BaseDot, the one way of summing products here.
template <class Rows, int R, int T, class D, class Act>
HWY_INLINE void Tile(const uint8_t* w, int64_t row_bytes, int64_t nb, const Act* xq, int64_t xq_stride,
                     float* y, int64_t ldy, const PrefetchConfig& pf) {
  using Block = typename Rows::Block;
  float acc[R][T] = {};
  TilePrefetch<R> ahead(pf, row_bytes);
  for (int64_t b = 0; b < nb; ++b) {
    typename Rows::Prepared prepared[R];
    float dw[R];
    ahead.AtBlock(w, b, sizeof(Block), pf.level);
    for (int r = 0; r < R; ++r) {
      const auto& blk = row_block<Block>(w + r * row_bytes, nb, b);
      dw[r] = f16_to_f32(blk.d);
      Rows::Prepare(blk, prepared[r]);
    }
    for (int t = 0; t < T; ++t) {
      const Act& a = xq[t * xq_stride + b];
      for (int r = 0; r < R; ++r)
        acc[r][t] += dw[r] * a.d * static_cast<float>(ActivationDot(prepared[r].q, a));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) y[t * ldy + r] = acc[r][t];
}

inline constexpr int kTileRows = 2;
inline constexpr int kTileTokens = qrun::kTileTokens;
inline constexpr int kMatvecRows = 2;
template <class Rows>
inline constexpr int kMatvecRowsOf = kMatvecRows;
template <class Rows>
inline constexpr int kTileRowsOf = kTileRows;

#endif  // QRUN_X86_INT8

// Calls tile.template operator()<R, T>(first row, first token) over all rows and n
// tokens: tiles of kPromptRows x kTileTokens, of kRows (then kMatvecRows) x 1 for single
// tokens, single-row tiles for the rest.
template <int kRows = kMatvecRows, int kPromptRows = kTileRows, class TileAt>
HWY_INLINE void ForEachTile(int64_t rows, int64_t n, TileAt&& tile) {
  int64_t t = 0;
  for (; t + kTileTokens <= n; t += kTileTokens) {
    int64_t r = 0;
    for (; r + kPromptRows <= rows; r += kPromptRows) tile.template operator()<kPromptRows, kTileTokens>(r, t);
    for (; r < rows; ++r) tile.template operator()<1, kTileTokens>(r, t);
  }
  for (; t < n; ++t) {
    int64_t r = 0;
    for (; r + kRows <= rows; r += kRows) tile.template operator()<kRows, 1>(r, t);
    if constexpr (kRows > kMatvecRows)
      for (; r + kMatvecRows <= rows; r += kMatvecRows) tile.template operator()<kMatvecRows, 1>(r, t);
    for (; r < rows; ++r) tile.template operator()<1, 1>(r, t);
  }
}

// Y[i * ldy + r] for all rows and n tokens, products summed as D says (BaseDot: the
// target's own instructions).
template <class Rows, class D, class Act>
HWY_INLINE void MatMul(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const Act* xq, float* y,
                       int64_t ldy) {
  const int64_t nb = q8a_blocks(cols);
  const int64_t row_bytes = nb * static_cast<int64_t>(sizeof(typename Rows::Block));
  const PrefetchConfig pf = prefetch_config_for(kWideBlock<typename Rows::Block>);
  ForEachTile<kMatvecRowsOf<Rows>, kTileRowsOf<Rows>>(rows, n, [&]<int R, int T>(int64_t r, int64_t t) {
    Tile<Rows, R, T, D>(w + r * row_bytes, row_bytes, nb, xq + t * nb, nb, y + t * ldy + r, ldy, pf);
  });
}

// Per token, the 16 sub-block sums of each super-block's activations, each times its
// block's scale (zero past the row's end): a Q2K super-block's minimums then cost one
// product of 16 floats per row and token instead of one per run (llama.cpp's Q8_K
// blocks carry such sums for the same reason).
inline const float* Q2KActivationSums(const BlockQ8A* xq, int64_t n, int64_t nb) {
  const int64_t stride = (nb + 7) / 8 * 16;
  thread_local std::vector<float> sums;
  sums.assign(static_cast<size_t>(n * stride), 0.0f);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ8A& a = xq[t * nb + b];
      int32_t half[2] = {0, 0};
      for (int j = 0; j < 32; ++j) half[j / 16] += a.qs[j];
      for (int h = 0; h < 2; ++h) sums[static_cast<size_t>(t * stride + 2 * b + h)] = a.d * static_cast<float>(half[h]);
    }
  }
  return sums.data();
}

HWY_INLINE void Q2KMatMul(const uint8_t* w, int64_t rows, int64_t cols, int64_t n, const BlockQ8A* xq, float* y,
                          int64_t ldy) {
  const int64_t nb = q8a_blocks(cols), stride = (nb + 7) / 8 * 16;
  const int64_t row_bytes = dtype_row_bytes(DType::Q2K, cols);
  const float* sums = Q2KActivationSums(xq, n, nb);
  const PrefetchConfig pf = prefetch_config_for(false);
  ForEachTile(rows, n, [&]<int R, int T>(int64_t r, int64_t t) {
    Q2KTile<R, T>(w + r * row_bytes, row_bytes, nb, xq + t * nb, nb, sums + t * stride, stride, y + t * ldy + r, ldy, pf);
  });
}

}  // namespace int8_tiles
}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#endif  // include guard
