// How the int8 kernels prefetch weight rows while streaming them from memory: a
// process-wide setting, chosen once for the CPU (src/kernel_choice.cpp) and read by
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

struct PrefetchConfig {
  PrefetchLevel level = PrefetchLevel::L2;
  int64_t distance = 24 << 10;  // bytes ahead of the row position being read
};

void set_prefetch_config(const PrefetchConfig& c);
PrefetchConfig prefetch_config();

// "l2+24KiB", "l1+6KiB", "none".
std::string describe(const PrefetchConfig& c);
// Parses "none", "l1:BYTES" or "l2:BYTES" (BYTES may end in k/K); throws on anything else.
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
