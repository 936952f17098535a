// The machine's read bandwidth as the benches measure it: threads each stream their
// share of a buffer (the model mapping itself, so it is the memory decode reads) and
// sum it. Best of a few passes, after one pass to page it in.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>

#include "qrun/thread_pool.h"
#include "simd/prefetch.h"

namespace qrun::bench {

// Prefetches as the kernels do (simd/prefetch.h), so the figure is what a stream of
// reads can reach here, not what the hardware prefetcher alone gets.
inline uint64_t sum_words(const uint8_t* p, size_t n, const PrefetchConfig& pf) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if (i % 64 == 0) prefetch_for_read(p + i + pf.distance, pf.level);
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    a += w[0];
    b += w[1];
    c += w[2];
    d += w[3];
  }
  return a ^ b ^ c ^ d;
}

// Bytes per second reading [p, p + n) with `threads` threads of `pool`: the best pass
// with the kernels' prefetch setting or none (a single sequential stream may do better
// on the hardware prefetcher alone).
inline double read_bandwidth(ThreadPool& pool, const uint8_t* p, size_t n, int threads, int passes = 2) {
  volatile uint64_t sink = 0;
  double best = 0;
  for (const PrefetchConfig pf : {prefetch_config(), PrefetchConfig{PrefetchLevel::None, 0}}) {
    for (int pass = 0; pass <= passes; ++pass) {
      const auto t0 = std::chrono::steady_clock::now();
      pool.run([&](int t, int nt) {
        const size_t begin = n * size_t(t) / size_t(nt) & ~size_t{63};
        const size_t end = t + 1 == nt ? n : (n * size_t(t + 1) / size_t(nt) & ~size_t{63});
        sink = sink + sum_words(p + begin, end - begin, pf);
      }, threads);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (pass > 0) best = std::max(best, static_cast<double>(n) / s);  // pass 0 pages in
    }
  }
  return best;
}

}  // namespace qrun::bench
