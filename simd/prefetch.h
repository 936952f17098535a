// How the int8 kernels prefetch weight rows while streaming them from memory: a
// process-wide setting, chosen once for the CPU (src/runtime/kernel_choice.cpp) and read by
// every kernel call.
//
// Measured on Zen 4 (2-core EPYC, tinyllama q4 decode, one thread): prefetcht0 six rows
// ahead 18 tok/s, no software prefetch 15, prefetcht1 (into L2) 16-32 KiB ahead 38-44.
// A prefetch into L1 holds one of the core's few L1 miss buffers until the line
// arrives, which caps the lines in flight; L2 has several times more.
#pragma once

#include <cstdint>
#include <string>

namespace qrun {

enum class PrefetchLevel : uint8_t { None, L1, L2 };

// Distances are bytes of a tile's weight stream ahead of the position being read
// (simd/prefetch-inl.h, TilePrefetch). Rows of 8-bit codes and floats get their own: on
// Zen 5 the q8 stream wants lines requested less far ahead than the packed q4 and q6
// ones (measured in src/runtime/kernel_choice.cpp).
struct PrefetchConfig {
  PrefetchLevel level = PrefetchLevel::L2;
  int64_t distance = 24 << 10;       // packed codes: q3 to q6
  int64_t distance_wide = 24 << 10;  // q8 and float rows
  // Rows an AVX-512 VNNI matvec tile of q8, q6 or q5 reads side by side: 4 (they share
  // each activation load), or 1, one sequential stream (src/runtime/kernel_choice.cpp: on Zen 5
  // these rows stream from DRAM faster so). q4, q4n, q3 and q2k tiles, which one row
  // leaves compute bound, keep 4, as do the AVX2 and portable kernels.
  int matvec_rows = 4;
};

void set_prefetch_config(const PrefetchConfig& c);
PrefetchConfig prefetch_config();
// The setting for one kernel: `distance` is the one for its rows.
PrefetchConfig prefetch_config_for(bool wide_rows);

// "l2+24KiB", "l1+8KiB, q8/float 3KiB, q8/q6/q5 matvec by single rows", "none".
std::string describe(const PrefetchConfig& c);
// Parses "none", "l1:BYTES", "l2:BYTES" or "LEVEL:BYTES/BYTES_WIDE" (the second distance
// for q8 and float rows), each optionally followed by ",rows:1" or ",rows:4"
// (matvec_rows); BYTES may end in k/K. Throws on anything else.
PrefetchConfig parse_prefetch_config(const std::string& text);

// Kernels call their per-target copy, PrefetchRow (simd/prefetch-inl.h).
__attribute__((always_inline)) inline void prefetch_for_read(const void* p, PrefetchLevel level) {
  switch (level) {
    case PrefetchLevel::L1: __builtin_prefetch(p, 0, 3); break;
    case PrefetchLevel::L2: __builtin_prefetch(p, 0, 2); break;
    case PrefetchLevel::None: break;
  }
}

}  // namespace qrun
