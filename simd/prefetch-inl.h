// prefetch_for_read (simd/prefetch.h) compiled for each Highway target: GCC does not
// inline the baseline function into target-specific kernels, and it drops a call that
// does nothing but prefetch.

#if defined(QRUN_SIMD_PREFETCH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef QRUN_SIMD_PREFETCH_INL_H_
#undef QRUN_SIMD_PREFETCH_INL_H_
#else
#define QRUN_SIMD_PREFETCH_INL_H_
#endif

#include "hwy/highway.h"
#include "simd/prefetch.h"

HWY_BEFORE_NAMESPACE();
namespace qrun {
namespace HWY_NAMESPACE {

HWY_INLINE void PrefetchRow(const void* p, PrefetchLevel level) {
  if (level == PrefetchLevel::L2) __builtin_prefetch(p, 0, 2);
  else if (level == PrefetchLevel::L1) __builtin_prefetch(p, 0, 3);
}

}  // namespace HWY_NAMESPACE
}  // namespace qrun
HWY_AFTER_NAMESPACE();

#endif  // include guard
