// What the runtime knows about the CPU it runs on: enough to name it in timings and
// benches and to pick between kernels that win on different microarchitectures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qrun {

enum class CpuFamily {
  Other,
  AmdZen4,   // AVX-512 on 256-bit units: 512-bit ops issue as two halves
  AmdZen5,   // full-width AVX-512
  IntelAvx512,
};

struct CpuInfo {
  std::string name;         // e.g. "AMD EPYC 9454"
  CpuFamily family = CpuFamily::Other;
  int physical_cores = 1;   // the default thread count: performance cores of a hybrid CPU
  int other_cores = 0;      // a hybrid CPU's efficiency cores, left out of physical_cores
  uint64_t l2_bytes = 0;    // per core
  uint64_t l3_bytes = 0;    // total
};

// Read once (cpuinfo and CPUID), then cached.
const CpuInfo& cpu_info();

const char* cpu_family_name(CpuFamily f);

// How many of a CPU's physical cores the default thread count takes, from each core's
// speed class (higher is faster: Intel's core type, an ARM core's top frequency; 0 for a
// core it cannot tell or run on): all but the slowest class when the classes differ (a
// hybrid CPU: Intel's efficiency cores, ARM's LITTLE ones), else all. qrun splits each
// matrix evenly over its threads, so one efficiency core, about half as fast, would hold
// every other thread back (llama.cpp leaves them out of its default on x86 too).
int performance_core_count(const std::vector<uint64_t>& core_speed_class);

// One line for logs and bench tables: name, family, cores, caches.
std::string cpu_description();

}  // namespace qrun
