#include "qrun/cpu_info.h"

#include "simd/x86_cpuid.h"

#include <cpuinfo.h>

#include <pthread.h>
#include <sched.h>

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
  const bool avx512f = cpuid_leaf7().avx512f();
  if (amd && family == 0x1A) return CpuFamily::AmdZen5;
  // Family 19h: Zen 3 has no AVX-512; Zen 4 (Genoa, Raphael, Phoenix, Bergamo) has it.
  if (amd && family == 0x19 && avx512f) return CpuFamily::AmdZen4;
  (void)model;
  if (intel && avx512f) return CpuFamily::IntelAvx512;
#endif
  return CpuFamily::Other;
}

// Intel hybrid CPUs (Alder Lake and later) report each logical processor's core type in
// CPUID leaf 0x1A, read on that processor: 0x40 Core (performance), 0x20 Atom
// (efficiency). Bookworm's cpuinfo predates them, so a helper thread visits each one.
std::vector<uint64_t> x86_core_classes() {
  std::vector<uint64_t> classes;
#if defined(__x86_64__) || defined(__i386__)
  if (__get_cpuid_max(0, nullptr) < 0x1A) return classes;
  if (!cpuid_leaf7().hybrid()) return classes;
  const cpuinfo_core* cores = cpuinfo_get_cores();
  classes.assign(cpuinfo_get_cores_count(), 0);
  std::thread([&] {
    for (uint32_t i = 0; i < cpuinfo_get_processors_count(); ++i) {
      const cpuinfo_processor* p = cpuinfo_get_processor(i);
      if (p->core == nullptr || p->linux_id < 0 || p->linux_id >= CPU_SETSIZE) continue;
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(p->linux_id, &set);
      if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) continue;  // not ours to run on
      unsigned eax, ebx, ecx, edx;
      __cpuid_count(0x1A, 0, eax, ebx, ecx, edx);
      const uint64_t type = eax >> 24;
      classes[static_cast<size_t>(p->core - cores)] = type == 0x40 ? 2 : type == 0x20 ? 1 : 0;
    }
  }).join();
#endif
  return classes;
}

// ARM big.LITTLE: cpuinfo reads each core's top frequency from cpufreq (0 when absent).
// Not on x86, where cores of one kind differ in top frequency too (AMD's preferred cores,
// Intel's Turbo Boost Max cores).
std::vector<uint64_t> frequency_classes() {
  std::vector<uint64_t> classes;
#if defined(__aarch64__) || defined(__arm__)
  for (uint32_t i = 0; i < cpuinfo_get_cores_count(); ++i) classes.push_back(cpuinfo_get_core(i)->frequency);
#else
  classes.assign(cpuinfo_get_cores_count(), 0);
#endif
  return classes;
}

CpuInfo detect() {
  CpuInfo info;
  info.family = detect_family();
  info.physical_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (cpuinfo_initialize()) {
    if (const cpuinfo_package* p = cpuinfo_get_package(0)) info.name = p->name;
    if (cpuinfo_get_cores_count() > 0) {
      std::vector<uint64_t> classes = x86_core_classes();
      if (classes.empty()) classes = frequency_classes();
      info.physical_cores = performance_core_count(classes);
      info.other_cores = static_cast<int>(cpuinfo_get_cores_count()) - info.physical_cores;
    }
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

int performance_core_count(const std::vector<uint64_t>& core_speed_class) {
  if (core_speed_class.empty()) return 1;
  const uint64_t slowest = *std::min_element(core_speed_class.begin(), core_speed_class.end());
  const auto faster = std::count_if(core_speed_class.begin(), core_speed_class.end(),
                                    [&](uint64_t c) { return c != slowest; });
  return static_cast<int>(faster > 0 ? faster : core_speed_class.size());
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
  char others[64] = "";
  if (c.other_cores > 0) std::snprintf(others, sizeof others, " (+%d efficiency cores)", c.other_cores);
  std::snprintf(buf, sizeof buf, "%s (%s), %d cores%s, L2 %llu KiB/core, L3 %llu MiB", c.name.c_str(),
                cpu_family_name(c.family), c.physical_cores, others, static_cast<unsigned long long>(c.l2_bytes >> 10),
                static_cast<unsigned long long>(c.l3_bytes >> 20));
  return buf;
}

}  // namespace qrun
