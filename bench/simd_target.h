// --target for the benches: run the kernels of one compiled Highway target this CPU
// supports (e.g. AVX2 on an AVX-512 machine), to measure what other CPUs get.
#pragma once

#include <cstdint>
#include <string>

#include "simd/hwy_targets.h"  // before any hwy header: the library's target set

#include "hwy/targets.h"

namespace qrun::bench {

// False (and nothing changed) when `name` is not compiled in or not supported here.
inline bool force_simd_target(const std::string& name) {
  for (int64_t t : hwy::SupportedAndGeneratedTargets())
    if (name == hwy::TargetName(t)) {
      hwy::SetSupportedTargetsForTest(t);
      return true;
    }
  return false;
}

}  // namespace qrun::bench
