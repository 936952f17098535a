#include "simd/x86_cpuid.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace qrun {

namespace {

CpuidLeaf7 read_leaf7() {
  CpuidLeaf7 l;
#if defined(__x86_64__) || defined(__i386__)
  if (__get_cpuid_max(0, nullptr) < 7) return l;
  unsigned eax, ebx, ecx, edx;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  l.ebx = ebx, l.ecx = ecx, l.edx = edx;
  if (eax >= 1) {
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    l.eax1 = eax;
  }
#endif
  return l;
}

}  // namespace

const CpuidLeaf7& cpuid_leaf7() {
  static const CpuidLeaf7 leaf = read_leaf7();
  return leaf;
}

}  // namespace qrun
