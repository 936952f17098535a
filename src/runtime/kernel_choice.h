// Picks the kernel settings that differ between CPUs (simd/prefetch.h) from what
// cpu_info() reports, unless the user forces one (RuntimeOptions::prefetch, or the
// QRUN_PREFETCH environment variable, e.g. QRUN_PREFETCH=l1:6144), and whether float
// prompt batches go through OpenBLAS (simd/blas_matmul.h).
#pragma once

#include <string>

#include "qrun/cpu_info.h"
#include "qrun/model_file.h"
#include "simd/prefetch.h"

namespace qrun {

PrefetchConfig default_prefetch(const CpuInfo& cpu);

// Applies `forced_prefetch` when non-empty, else $QRUN_PREFETCH, else default_prefetch(),
// and sgemm for float prompt batches unless `blas` is false or $QRUN_BLAS is 0; returns
// the choice as the timing block names it, e.g. "prefetch l2+24KiB (Zen 4 default), sgemm".
std::string apply_kernel_choice(const std::string& forced_prefetch, bool blas = true);

// Prompt tokens per forward batch when the user gives none (requested <= 0): 256 for
// float weights, whose batches go through sgemm (tinyllama f16 pp256, one thread: 29.8
// tok/s at 64, 36.9 at 256), 64 for the int8 kernels (no gain beyond). A mixture of
// experts spreads a batch over its experts: the batch grows until each expert averages
// half the dense batch's tokens, up to 512 (synthetic Qwen3-30B-A3B shape, 4 layers, q4,
// pp512 on two threads: 439-480 tok/s at 64, 467 at 256, 560-586 at 512; the synthetic
// Mixtral's 2 of 8 experts: 263 at 64, 295 at 128, 274 at 256, 213 at 512).
int prompt_batch(const ModelFile& file, int requested);

}  // namespace qrun
