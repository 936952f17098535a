// What the runtime knows about the CPU it runs on: enough to name it in timings and
// benches and to pick between kernels that win on different microarchitectures.
#pragma once

#include <cstdint>
#include <string>

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
  int physical_cores = 1;
  uint64_t l2_bytes = 0;    // per core
  uint64_t l3_bytes = 0;    // total
};

// Read once (cpuinfo and CPUID), then cached.
const CpuInfo& cpu_info();

const char* cpu_family_name(CpuFamily f);

// One line for logs and bench tables: name, family, cores, caches.
std::string cpu_description();

}  // namespace qrun
