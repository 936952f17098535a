// --target for the benches: run the kernels of one compiled Highway target this CPU
// supports (e.g. AVX2 on an AVX-512 machine), to measure what other CPUs get. "AVX2" and
// "AVX3" run their kernels without vpdpbusd, "AVX2+VNNI" and "AVX3+VNNI" with it
// (simd/int8_vnni.h).
#pragma once

#include <cstdint>
#include <string>

#include "simd/hwy_targets.h"  // before any hwy header: the library's target set

#include "hwy/targets.h"
#include "simd/int8_vnni.h"

namespace qrun::bench {

// False (and nothing changed) when `name` is not compiled in or not supported here.
inline bool force_simd_target(const std::string& name) {
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) {
    const char* vnni_name = int8_vnni_copy_name(t);
    const bool vnni = vnni_name && name == vnni_name;
    if (name != hwy::TargetName(t) && !vnni) continue;
    if (vnni && !int8_vnni_active(t)) return false;
    hwy::SetSupportedTargetsForTest(t);
    set_int8_vnni_allowed(vnni);
    return true;
  }
  return false;
}

}  // namespace qrun::bench
