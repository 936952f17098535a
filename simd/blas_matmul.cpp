#include "simd/blas_matmul.h"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <vector>

#include "simd/kernels.h"

namespace qrun {

namespace {

// sgemm repacks the activations for every call, so panels are as large as fit a few
// MiB of f32 (L3): with 64-row panels packing took 17% of a tinyllama f16 prompt.
// 4 MiB panels measured best (tinyllama f16 pp256, one thread: 29.2 tok/s at 1 MiB,
// 39.4 at 4, 38.3 at 16).
int64_t panel_rows(int64_t cols) { return std::max<int64_t>(16, (int64_t{4} << 20) / (cols * 4)); }

// OpenBLAS would otherwise start its own threads inside a call made from each of ours.
void use_one_blas_thread() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

std::atomic<bool> g_enabled{true};

}  // namespace

std::string blas_core_name() {
  std::string name = openblas_get_corename();
  if (std::getenv("OPENBLAS_CORETYPE")) name += " (forced by OPENBLAS_CORETYPE)";
  return name;
}

void set_blas_enabled(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
bool blas_enabled() { return g_enabled.load(std::memory_order_relaxed); }

void blas_matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n, const float* x, float* y,
                 int64_t ldy) {
  use_one_blas_thread();
  if (t == DType::F32) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(rows),
                static_cast<blasint>(cols), 1.0f, x, static_cast<blasint>(cols), static_cast<const float*>(w),
                static_cast<blasint>(cols), 0.0f, y, static_cast<blasint>(ldy));
    return;
  }
  thread_local std::vector<float> panel;
  const int64_t rows_per_panel = panel_rows(cols);
  panel.resize(static_cast<size_t>(std::min(rows, rows_per_panel) * cols));
  const auto* base = static_cast<const uint16_t*>(w);
  for (int64_t r0 = 0; r0 < rows; r0 += rows_per_panel) {
    const int64_t pr = std::min(rows_per_panel, rows - r0);
    for (int64_t r = 0; r < pr; ++r) widen_row_to_f32(t, base + (r0 + r) * cols, cols, panel.data() + r * cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(n), static_cast<blasint>(pr),
                static_cast<blasint>(cols), 1.0f, x, static_cast<blasint>(cols), panel.data(),
                static_cast<blasint>(cols), 0.0f, y + r0, static_cast<blasint>(ldy));
  }
}

}  // namespace qrun
