// Matrix products of the forward pass: several projections of one input in one
// parallel section, with the input quantized once for all of them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "simd/kernels.h"
#include "src/runtime/layer_weights.h"

namespace qrun {

class ThreadPool;

// Below this many weight bytes per thread, waking another thread costs more than it
// saves (tiny models: stories260K's matrices are a few KiB; at 32 KiB its 131 KiB
// output head went to 2 threads and -t 2 decoding was 7% slower than -t 1).
inline constexpr int64_t kMinBytesPerThread = 128 << 10;

inline int useful_threads(int64_t bytes) { return static_cast<int>(std::max<int64_t>(1, bytes / kMinBytesPerThread)); }

// One projection's output: y[i * ldy + r] = W row r . x row (x_row + i). x_row lets
// projections of one section read different rows of the input (the experts a token
// chose each read their own hidden state).
struct Projection {
  Weight w;
  float* y;
  int64_t ldy;
  int64_t x_row = 0;
};

// Where the quantized activations go; Q8 matrices take 16-bit ones when the plan says
// so (RunPlan::q8_step_bits, q8_prompt_bits).
struct ActivationBuffers {
  std::vector<BlockQ8A>& q8;
  std::vector<BlockQ16A>& q16;
  bool wide;
};

// Projections of one input (n rows of the matrices' cols, from each projection's x_row)
// in one parallel section: the threads split the rows of all of them taken together,
// so decode pays one hand-off and one wait for q, k and v (or gate and up) instead of
// one per matrix, and no thread idles at each matrix's end.
void project(ThreadPool& pool, std::span<const Projection> outs, const float* x, int n, const ActivationBuffers& act);

inline void project(ThreadPool& pool, std::initializer_list<Projection> outs, const float* x, int n,
                    const ActivationBuffers& act) {
  project(pool, std::span<const Projection>(outs.begin(), outs.size()), x, n, act);
}

}  // namespace qrun
