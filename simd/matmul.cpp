// matvec and matmul entry points: dispatch on the weight type, then to the best
// Highway target for this CPU. matvec is matmul with one token.
#include "simd/hwy_targets.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep

#include "hwy/highway.h"
#include "simd/float_tiles-inl.h"
#include "simd/int8_tiles-inl.h"
#include "simd/kernels.h"

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
#pragma GCC target("avx512vnni")  // see simd/int8_tiles-inl.h
#endif
namespace qrun {
namespace HWY_NAMESPACE {

void MatMulImpl(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x,
                const BlockQ8A* xq, float* y, int64_t ldy) {
  const auto* bytes = static_cast<const uint8_t*>(w);
  switch (t) {
    case DType::F32: return float_tiles::MatMul<float_tiles::F32Row>(w, rows, cols, n, x, y, ldy);
    case DType::F16: return float_tiles::MatMul<float_tiles::F16Row>(w, rows, cols, n, x, y, ldy);
    case DType::BF16: return float_tiles::MatMul<float_tiles::BF16Row>(w, rows, cols, n, x, y, ldy);
#if HWY_TARGET == HWY_AVX3_DL
    case DType::Q8:
      // Decoding Q8, the block-per-vector row kernel beat the stream kernel by ~6% on one
      // thread (tinyllama q8 tg 27.2-27.9 vs 25.6-26.2 tok/s); for Q4 and for prompts the
      // stream kernel wins by far (Q4 tg 48-53 vs 32-33).
      if (n == 1) return int8_tiles::MatMul<int8_tiles::Q8Rows>(bytes, rows, cols, n, xq, y, ldy);
      return int8_tiles::stream::MatMul<int8_tiles::stream::Q8Format>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q4: return int8_tiles::stream::MatMul<int8_tiles::stream::Q4Format>(bytes, rows, cols, n, xq, y, ldy);
#else
    case DType::Q8: return int8_tiles::MatMul<int8_tiles::Q8Rows>(bytes, rows, cols, n, xq, y, ldy);
    case DType::Q4: return int8_tiles::MatMul<int8_tiles::Q4Rows>(bytes, rows, cols, n, xq, y, ldy);
#endif
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace qrun {

HWY_EXPORT(MatMulImpl);

void matvec(DType t, const void* w, int64_t rows, int64_t cols, const float* x, const BlockQ8A* xq, float* y) {
  HWY_DYNAMIC_DISPATCH(MatMulImpl)(t, w, rows, cols, 1, x, xq, y, 1);
}

void matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x, const BlockQ8A* xq,
            float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(MatMulImpl)(t, w, rows, cols, n, x, xq, y, ldy);
}

}  // namespace qrun
#endif  // HWY_ONCE
