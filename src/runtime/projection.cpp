#include "src/runtime/projection.h"

#include <algorithm>

#include "qrun/thread_pool.h"

namespace qrun {

namespace {

bool takes_i16(const Weight& w, bool wide) { return wide && w.dtype == DType::Q8; }

// The input's quantized forms, made once for every projection that reads it.
struct QuantizedInput {
  const BlockQ8A* q8 = nullptr;
  const BlockQ16A* q16 = nullptr;
};

QuantizedInput quantize_input(ThreadPool& pool, std::span<const Projection> outs, const float* x, int64_t rows,
                              int64_t cols, const ActivationBuffers& act) {
  bool int8 = false, int16 = false;
  for (const Projection& p : outs) {
    if (takes_i16(p.w, act.wide)) int16 = true;
    else if (dtype_is_quantized(p.w.dtype)) int8 = true;
  }
  if (!int8 && !int16) return {};
  const int64_t blocks = q8a_blocks(cols);
  pool.parallel_for(rows, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      if (int8) quantize_activations(x + i * cols, cols, act.q8.data() + i * blocks);
      if (int16) quantize_activations_i16(x + i * cols, cols, act.q16.data() + i * blocks);
    }
  }, useful_threads(rows * cols * 4));
  return {int8 ? act.q8.data() : nullptr, int16 ? act.q16.data() : nullptr};
}

}  // namespace

void project(ThreadPool& pool, std::span<const Projection> outs, const float* x, int n, const ActivationBuffers& act) {
  const int64_t cols = outs.front().w.cols, blocks = q8a_blocks(cols);
  int64_t rows = 0, bytes = 0, input_rows = n;
  for (const Projection& p : outs) {
    rows += p.w.rows;
    bytes += p.w.rows * p.w.row_bytes();
    input_rows = std::max(input_rows, p.x_row + n);
  }
  const QuantizedInput xq = quantize_input(pool, outs, x, input_rows, cols, act);
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    int64_t first = 0;  // the current projection's first row in the joint range
    for (const Projection& p : outs) {
      const int64_t b = std::max(r0, first) - first, e = std::min(r1, first + p.w.rows) - first;
      first += p.w.rows;
      if (b >= e) continue;
      const uint8_t* w = p.w.data + b * p.w.row_bytes();
      const float* xp = x + p.x_row * cols;
      const BlockQ8A* q8 = xq.q8 ? xq.q8 + p.x_row * blocks : nullptr;
      if (takes_i16(p.w, act.wide)) {
        matmul_i16(w, e - b, p.w.cols, n, xq.q16 + p.x_row * blocks, p.y + b, p.ldy);
      } else if (n == 1) {
        matvec(p.w.dtype, w, e - b, p.w.cols, xp, q8, p.y + b);
      } else {
        matmul(p.w.dtype, w, e - b, p.w.cols, n, xp, q8, p.y + b, p.ldy);
      }
    }
  }, useful_threads(bytes * n));
}

}  // namespace qrun
