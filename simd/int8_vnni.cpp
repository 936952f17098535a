#include "simd/int8_vnni.h"

#include "simd/hwy_targets.h"  // before any hwy header: the library's target set

#include <atomic>

#include "hwy/targets.h"

#include "simd/x86_cpuid.h"

namespace qrun {

namespace {

std::atomic<bool> g_allowed{true};

}  // namespace

bool int8_vnni_active(int64_t hwy_target) {
  // The OS-enabled vector state the forms need is implied by the target Highway picked
  // (AVX2: YMM state; AVX3: ZMM and mask state).
  if (!g_allowed.load(std::memory_order_relaxed)) return false;
  if (hwy_target == HWY_AVX2) return cpuid_leaf7().avx_vnni();
  if (hwy_target == HWY_AVX3) return cpuid_leaf7().avx512_vnni();
  return false;
}

const char* int8_vnni_copy_name(int64_t hwy_target) {
  if (hwy_target == HWY_AVX2) return "AVX2+VNNI";
  if (hwy_target == HWY_AVX3) return "AVX3+VNNI";
  return nullptr;
}

void set_int8_vnni_allowed(bool allowed) { g_allowed.store(allowed, std::memory_order_relaxed); }

}  // namespace qrun
