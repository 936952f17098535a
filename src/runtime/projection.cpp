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

// One parallel section over the rows of every projection in `outs`.
void run_section(ThreadPool& pool, std::span<const Projection> outs, const float* x, int n,
                 const ActivationBuffers& act) {
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

// y_i += B t_i for each adapted projection (t_i = A x_i, rank floats per token), B's rows
// of all of them split among the threads in one section.
void add_low_rank_products(ThreadPool& pool, std::span<const Projection> adapted, const std::vector<std::vector<float>>& t,
                           int n) {
  int64_t rows = 0, bytes = 0;
  for (const Projection& p : adapted) {
    rows += p.w.rows;
    bytes += p.w.rows * p.w.lora->rank * 2;
  }
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> part;
    int64_t first = 0;
    for (size_t i = 0; i < adapted.size(); ++i) {
      const Projection& p = adapted[i];
      const LowRankUpdate& u = *p.w.lora;
      const int64_t b = std::max(r0, first) - first, e = std::min(r1, first + p.w.rows) - first, m = e - b;
      first += p.w.rows;
      if (m <= 0) continue;
      part.resize(static_cast<size_t>(n * m));
      matmul(DType::F16, u.b.data() + b * u.rank, m, u.rank, n, t[i].data(), nullptr, part.data(), m);
      for (int64_t k = 0; k < n; ++k)
        for (int64_t j = 0; j < m; ++j) p.y[k * p.ldy + b + j] += part[static_cast<size_t>(k * m + j)];
    }
  }, useful_threads(bytes * n));
}

}  // namespace

// Run-time LoRA (Weight::lora): each adapted projection's A x joins the section as rows of
// its own, and one more section adds B (A x): two hand-offs per call however many of its
// projections are adapted. The factors are f16: rank (rows + cols) multiply-adds per token,
// a few percent of W's rows * cols at the ranks adapters use.
void project(ThreadPool& pool, std::span<const Projection> outs, const float* x, int n, const ActivationBuffers& act) {
  if (std::none_of(outs.begin(), outs.end(), [](const Projection& p) { return p.w.lora != nullptr; }))
    return run_section(pool, outs, x, n, act);
  std::vector<Projection> section(outs.begin(), outs.end()), adapted;
  std::vector<std::vector<float>> t;
  t.reserve(outs.size());
  for (const Projection& p : outs) {
    if (!p.w.lora) continue;
    const LowRankUpdate& u = *p.w.lora;
    t.emplace_back(static_cast<size_t>(n * u.rank));
    section.push_back({Weight{DType::F16, reinterpret_cast<const uint8_t*>(u.a.data()), u.rank, u.cols}, t.back().data(),
                       u.rank, p.x_row});
    adapted.push_back(p);
  }
  run_section(pool, section, x, n, act);
  add_low_rank_products(pool, adapted, t, n);
}

}  // namespace qrun
