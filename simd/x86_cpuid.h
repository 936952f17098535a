// CPUID leaf 7 (structured extended features), read once for the kernels' dispatch
// (the VNNI forms) and the runtime's CPU detection (AVX-512, hybrid cores). All zero on
// CPUs without the leaf and on other architectures.
#pragma once

#include <cstdint>

namespace qrun {

struct CpuidLeaf7 {
  uint32_t ebx = 0, ecx = 0, edx = 0;  // subleaf 0
  uint32_t eax1 = 0;                   // subleaf 1's EAX

  bool avx512f() const { return (ebx >> 16) & 1; }
  bool avx512_vnni() const { return (ecx >> 11) & 1; }
  bool hybrid() const { return (edx >> 15) & 1; }
  bool avx_vnni() const { return (eax1 >> 4) & 1; }  // the VEX form
};

const CpuidLeaf7& cpuid_leaf7();

}  // namespace qrun
