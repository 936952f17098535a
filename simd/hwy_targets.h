// Which Highway targets the kernels are compiled for. Include before any hwy header in
// every simd/*.cpp (and in tests that iterate targets) so all agree on the set.
#pragma once

// AVX3_DL (Ice Lake / Zen 4: AVX-512 VNNI, VBMI2, ...) is opt-in in Highway 1.0.3;
// it is the target that gets the dpbusd int8 dot products.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
// SSSE3 would only add compile time: every x86-64 CPU of interest has SSE4 (which is
// kept, as the portable floor) and EMU128 remains the baseline fallback.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS HWY_SSSE3
#endif
