// Prompt batches on float weights (F32 / F16 / BF16) through OpenBLAS's sgemm, as
// llama.cpp's BLAS path does: the weights are widened to f32 one panel of rows at a
// time (a pass over the panel that is shared by every token of the batch), then one
// single-threaded sgemm per panel; the caller's thread pool splits the rows.
#pragma once

#include <cstdint>
#include <string>

#include "qrun/dtype.h"

namespace qrun {

// Batches at least this long go through sgemm; shorter ones stay on the Highway tiles
// (a panel's widening pass would cost more than the few tokens' dot products).
inline constexpr int64_t kBlasMinTokens = 8;

// Process-wide, like the prefetch setting (src/runtime/kernel_choice.cpp): off sends float
// prompt batches to the Highway tiles too (to measure what sgemm gains).
void set_blas_enabled(bool on);
bool blas_enabled();

// The kernel set OpenBLAS runs, e.g. "Cooperlake" (AVX-512) or "Haswell" (AVX2), noting
// when OPENBLAS_CORETYPE forced it: Haswell on a Zen 5 halves f16 prompt speed.
std::string blas_core_name();

inline bool blas_handles(DType t, int64_t n) {
  return n >= kBlasMinTokens && (t == DType::F32 || t == DType::F16 || t == DType::BF16) && blas_enabled();
}

// Y[i * ldy + r] = dot(W row r, X[i]), as matmul() (simd/kernels.h).
void blas_matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x, float* y,
                 int64_t ldy);

}  // namespace qrun
