// Whether the int8 kernels of Highway's AVX2 and AVX3 targets use vpdpbusd. Highway 1.0.3
// has no target for CPUs that have it beside those ISAs: AVX2 with AVX-VNNI, the VEX form
// (Intel Alder Lake and later client CPUs, Zen 5), and AVX-512 with VNNI but without VBMI
// (Cascade Lake, which Highway runs as AVX3). Their kernels come in a second copy with
// vpdpbusd (simd/int8_tiles-inl.h, VnniDot), chosen per call from CPUID.
#pragma once

#include <cstdint>

namespace qrun {

// The copy for Highway target `hwy_target` (an HWY_* bit) would run: the target has one,
// the CPU reports the form it uses, and it is allowed.
bool int8_vnni_active(int64_t hwy_target);

// The copy's name in timing blocks and the benches' --target ("AVX2+VNNI"); null for
// targets without one.
const char* int8_vnni_copy_name(int64_t hwy_target);

// Tests and benches switch the copy off to run what CPUs without VNNI get. Default: on.
void set_int8_vnni_allowed(bool allowed);

}  // namespace qrun
