#include "qrun/cpu_info.h"

#include <cpuinfo.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace qrun {

namespace {

// Bookworm's cpuinfo predates Zen 4, so the family comes from CPUID directly.
CpuFamily detect_family() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return CpuFamily::Other;
  const bool amd = ebx == 0x68747541;    // "Auth"enticAMD
  const bool intel = ebx == 0x756e6547;  // "Genu"ineIntel
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return CpuFamily::Other;
  const unsigned family = ((eax >> 8) & 0xF) + ((eax >> 20) & 0xFF);
  const unsigned model = ((eax >> 4) & 0xF) | ((eax >> 12) & 0xF0);
  unsigned b7 = 0;
  if (__get_cpuid_max(0, nullptr) >= 7) {
    unsigned a7, c7, d7;
    __cpuid_count(7, 0, a7, b7, c7, d7);
  }
  const bool avx512f = (b7 >> 16) & 1;
  if (amd && family == 0x1A) return CpuFamily::AmdZen5;
  // Family 19h: Zen 3 has no AVX-512; Zen 4 (Genoa, Raphael, Phoenix, Bergamo) has it.
  if (amd && family == 0x19 && avx512f) return CpuFamily::AmdZen4;
  (void)model;
  if (intel && avx512f) return CpuFamily::IntelAvx512;
#endif
  return CpuFamily::Other;
}

CpuInfo detect() {
  CpuInfo info;
  info.family = detect_family();
  info.physical_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cpuinfo_initialize()) {
    if (const cpuinfo_package* p = cpuinfo_get_package(0)) info.name = p->name;
    if (cpuinfo_get_cores_count() > 0) info.physical_cores = static_cast<int>(cpuinfo_get_cores_count());
    if (const cpuinfo_cache* l2 = cpuinfo_get_l2_cache(0)) info.l2_bytes = l2->size;
    for (uint32_t i = 0; i < cpuinfo_get_l3_caches_count(); ++i) info.l3_bytes += cpuinfo_get_l3_cache(i)->size;
  }
  if (info.name.empty()) info.name = "unknown CPU";
  return info;
}

}  // namespace

const CpuInfo& cpu_info() {
  static const CpuInfo info = detect();
  return info;
}

const char* cpu_family_name(CpuFamily f) {
  switch (f) {
    case CpuFamily::AmdZen4: return "Zen 4";
    case CpuFamily::AmdZen5: return "Zen 5";
    case CpuFamily::IntelAvx512: return "Intel AVX-512";
    case CpuFamily::Other: break;
  }
  return "other";
}

std::string cpu_description() {
  const CpuInfo& c = cpu_info();
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s (%s), %d cores, L2 %llu KiB/core, L3 %llu MiB", c.name.c_str(),
                cpu_family_name(c.family), c.physical_cores, static_cast<unsigned long long>(c.l2_bytes >> 10),
                static_cast<unsigned long long>(c.l3_bytes >> 20));
  return buf;
}

}  // namespace qrun
