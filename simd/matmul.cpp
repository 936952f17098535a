// matvec and matmul entry points: dispatch on the weight type, then to the best
// Highway target for this CPU. matvec is matmul with one token.
#include "simd/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "simd/float_tiles-inl.h"
#include "simd/int8_tiles-inl.h"
#include "simd/split_group_tiles-inl.h"
#include "simd/q2k_tiles-inl.h"
#include "simd/blas_matmul.h"
#include "simd/int8_vnni.h"
#include "simd/kernels.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")  // see simd/int8_tiles-inl.h
#endif
namespace qrun {
namespace HWY_NAMESPACE {

#if HWY_TARGET != HWY_AVX3_DL
// The row kernels of the one-scale-per-block types, products summed as D says. Not
// inlined, so each copy is one function whose name says which (the ISA check reads it).
template <class D>
HWY_NOINLINE void Int8MatMul(DType t, const uint8_t* bytes, int64_t rows, int64_t cols, int64_t n,
                             const BlockQ8A* xq, float* y, int64_t ldy) {
  namespace it = int8_tiles;
  switch (t) {
    case DType::Q8: return it::MatMul<it::Q8Rows, D>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q4: return it::MatMul<it::Q4Rows, D>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q4N: return it::MatMul<it::Q4NRows, D>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Mx4: return it::MatMul<it::Mx4Rows, D>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q6: return it::MatMul<it::Q6Rows, D>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q5: return it::MatMul<it::Q5Rows, D>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q3: return it::MatMul<it::Q3Rows, D>(bytes, rows, cols, n, xq, y, ldy);
    default: HWY_ASSERT(false);
  }
}

template <class D>
HWY_NOINLINE void Int8MatMulI16(const uint8_t* bytes, int64_t rows, int64_t cols, int64_t n, const BlockQ16A* xq,
                                float* y, int64_t ldy) {
  int8_tiles::MatMul<int8_tiles::Q8Rows, D>(bytes, rows, cols, n, xq, y, ldy);
}

#if QRUN_X86_VNNI_COPY
HWY_INLINE bool UseVnniCopy() { return int8_vnni_active(HWY_TARGET); }
#endif
#endif

void MatMulImpl(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x,
                const BlockQ8A* xq, float* y, int64_t ldy) {
  const auto* bytes = static_cast<const uint8_t*>(w);
  switch (t) {
    case DType::F32: return float_tiles::MatMul<float_tiles::F32Row>(w, rows, cols, n, x, y, ldy);
    case DType::F16: return float_tiles::MatMul<float_tiles::F16Row>(w, rows, cols, n, x, y, ldy);
    case DType::BF16: return float_tiles::MatMul<float_tiles::BF16Row>(w, rows, cols, n, x, y, ldy);
#if HWY_TARGET == HWY_AVX3_DL
    case DType::Q8:
      // With the weights prefetched into L2 (simd/prefetch.h) the stream kernel decodes
      // as fast as the block-per-vector row kernel or faster (Zen 4, one thread: 17.6-18.8
      // vs 15.2-18.8 tok/s on tinyllama q8) and is far ahead on prompts.
      return int8_tiles::stream::MatMul<int8_tiles::stream::Q8Format>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q4: return int8_tiles::stream::MatMul<int8_tiles::stream::Q4Format>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q4N: return int8_tiles::stream::MatMul<int8_tiles::stream::Q4NFormat>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Mx4: return int8_tiles::stream::MatMul<int8_tiles::stream::Mx4Format>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q6: return split_groups::MatMul<split_groups::Q6Codes>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q5: return split_groups::MatMul<split_groups::Q5Codes>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q3: return split_groups::MatMul<split_groups::Q3Codes>(bytes, rows, cols, n, xq, y, ldy);
    // Super-blocks of 8 activation blocks with per-16 scales and minimums: their own tiles.
    case DType::Q2K: return q2k_tiles::MatMul(bytes, rows, cols, n, xq, y, ldy);
#else
    case DType::Q8:
    case DType::Q4:
    case DType::Q4N:
    case DType::Mx4:
    case DType::Q6:
    case DType::Q5:
    case DType::Q3:
#if QRUN_X86_VNNI_COPY
      if (UseVnniCopy()) return Int8MatMul<int8_tiles::VnniDot>(t, bytes, rows, cols, n, xq, y, ldy);
#endif
      return Int8MatMul<int8_tiles::BaseDot>(t, bytes, rows, cols, n, xq, y, ldy);
    // Super-blocks of 8 activation blocks with per-16 scales and minimums: their own tiles.
    case DType::Q2K: return int8_tiles::Q2KMatMul(bytes, rows, cols, n, xq, y, ldy);
#endif
  }
}

void MatMulI16Impl(const void* w, int64_t rows, int64_t cols, int64_t n, const BlockQ16A* xq, float* y,
                   int64_t ldy) {
  const auto* bytes = static_cast<const uint8_t*>(w);
#if HWY_TARGET == HWY_AVX3_DL
  int8_tiles::stream::MatMul<int8_tiles::stream::Q8WideFormat>(bytes, rows, cols, n, xq, y, ldy);
#else
#if QRUN_X86_VNNI_COPY
  if (UseVnniCopy()) return Int8MatMulI16<int8_tiles::VnniDot>(bytes, rows, cols, n, xq, y, ldy);
#endif
  Int8MatMulI16<int8_tiles::BaseDot>(bytes, rows, cols, n, xq, y, ldy);
#endif
}

bool FusedI16Impl() { return HWY_TARGET == HWY_AVX3_DL; }

namespace hn = hwy::HWY_NAMESPACE;

template <class Row>
void WidenRow(const typename Row::Elem* in, int64_t n, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(Row::Load(d, in + i), d, out + i);
  for (; i < n; ++i) out[i] = Row::ToFloat(in[i]);
}

void WidenRowImpl(DType t, const void* in, int64_t n, float* out) {
  const auto* p = static_cast<const uint16_t*>(in);
  if (t == DType::F16) return WidenRow<float_tiles::F16Row>(p, n, out);
  if (t == DType::BF16) return WidenRow<float_tiles::BF16Row>(p, n, out);
  HWY_ASSERT(false);  // only 16-bit float rows are widened
}

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qrun {

HWY_EXPORT(MatMulImpl);
HWY_EXPORT(MatMulI16Impl);
HWY_EXPORT(FusedI16Impl);

bool fused_i16_activations() { return HWY_DYNAMIC_DISPATCH(FusedI16Impl)(); }
HWY_EXPORT(WidenRowImpl);

void widen_row_to_f32(DType t, const void* in, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(WidenRowImpl)(t, in, n, out);
}

void matvec(DType t, const void* w, int64_t rows, int64_t cols, const float* x, const BlockQ8A* xq, float* y) {
  HWY_DYNAMIC_DISPATCH(MatMulImpl)(t, w, rows, cols, 1, x, xq, y, 1);
}

void matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x, const BlockQ8A* xq,
            float* y, int64_t ldy) {
  if (blas_handles(t, n)) return blas_matmul(t, w, rows, cols, n, x, y, ldy);
  HWY_DYNAMIC_DISPATCH(MatMulImpl)(t, w, rows, cols, n, x, xq, y, ldy);
}

void matmul_i16(const void* w, int64_t rows, int64_t cols, int64_t n, const BlockQ16A* xq, float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(MatMulI16Impl)(w, rows, cols, n, xq, y, ldy);
}

}  // namespace qrun
#endif  // HWY_ONCE
