#include "simd/int8_vnni.h"

#include "simd/hwy_targets.h"  // before any hwy header: the library's target set

#include <atomic>

#include "hwy/targets.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace qrun {

namespace {

struct VnniForms {
  bool vex = false;   // AVX-VNNI: CPUID.(EAX=7, ECX=1):EAX bit 4
  bool evex = false;  // AVX512_VNNI: CPUID.(EAX=7, ECX=0):ECX bit 11
};

// The OS-enabled vector state the forms need is implied by the target Highway picked
// (AVX2: YMM state; AVX3: ZMM and mask state).
VnniForms detect() {
  VnniForms f;
#if defined(__x86_64__) || defined(__i386__)
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  unsigned eax, ebx, ecx, edx;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  f.evex = (ecx >> 11) & 1;
  if (eax >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    f.vex = (eax >> 4) & 1;
  }
#endif
  return f;
}

std::atomic<bool> g_allowed{true};

}  // namespace

bool int8_vnni_active(int64_t hwy_target) {
  static const VnniForms forms = detect();
  if (!g_allowed.load(std::memory_order_relaxed)) return false;
  if (hwy_target == HWY_AVX2) return forms.vex;
  if (hwy_target == HWY_AVX3) return forms.evex;
  return false;
}

const char* int8_vnni_copy_name(int64_t hwy_target) {
  if (hwy_target == HWY_AVX2) return "AVX2+VNNI";
  if (hwy_target == HWY_AVX3) return "AVX3+VNNI";
  return nullptr;
}

void set_int8_vnni_allowed(bool allowed) { g_allowed.store(allowed, std::memory_order_relaxed); }

}  // namespace qrun
