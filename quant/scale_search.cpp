// With 8 to 64 levels the choice of scale dominates a block's error. Plain absmax
// (d = amax / (2^(bits-1) - 1)) wastes the lowest code and spends resolution on one
// outlier; instead we try a grid of candidate scales of both signs (a negative d puts
// the extra level on the positive side; for the asymmetric code book it mirrors the
// levels), refine each with the least-squares optimal d for its codes, and keep
// whichever has the smallest weighted squared error measured with the f16 scale
// actually stored.
#include "quant/scale_search.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "quant/block_formats.h"
#include "quant/quantize.h"
#include "quant/round_even.h"

namespace qrun {

namespace {

constexpr int kBlock = 32;

// Rounds d to f16, clamped to the finite range.
uint16_t to_f16_scale(float d) { return f32_to_f16(std::clamp(d, -65504.0f, 65504.0f)); }

// A set of levels (value = d * level): the level nearest to y, and the code that stores
// a level. nearest_level is branch-free float arithmetic so the search's loops over a
// block vectorize (the search evaluates ~70 candidate scales per block).
struct UniformLevels {
  int offset, top;  // level = code - offset, code in [0, top]
  float nearest_level(float y) const {
    // std::max(lo, NaN) is lo: a NaN (never produced by finite weights) gets a valid code.
    const float lo = -static_cast<float>(offset), hi = static_cast<float>(top - offset);
    return round_even(std::min(hi, std::max(lo, y)));
  }
  uint8_t code(float level) const { return static_cast<uint8_t>(static_cast<int>(level) + offset); }
};

struct Q4NLevels {
  // The lowest level plus the step to each higher level whose midpoint lies below y.
  float nearest_level(float y) const {
    float level = kQ4NLevels[0];
    for (int k = 0; k < 15; ++k) level += y > kMid[k] ? kStep[k] : 0.0f;
    return level;
  }
  uint8_t code(float level) const {
    uint8_t c = 0;
    while (c < 15 && static_cast<float>(kQ4NLevels[c]) != level) ++c;
    return c;
  }

 private:
  static constexpr auto kMid = [] {
    std::array<float, 15> m{};
    for (int k = 0; k < 15; ++k) m[k] = 0.5f * static_cast<float>(kQ4NLevels[k] + kQ4NLevels[k + 1]);
    return m;
  }();
  static constexpr auto kStep = [] {
    std::array<float, 15> m{};
    for (int k = 0; k < 15; ++k) m[k] = static_cast<float>(kQ4NLevels[k + 1] - kQ4NLevels[k]);
    return m;
  }();
};

// Sums over a block in 8 interleaved partial sums: one running sum would make every
// candidate wait on 32 dependent additions.
template <class Term>
float block_sum(Term term) {
  float acc[8] = {};
  for (int i = 0; i < kBlock; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += term(i + k);
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

template <class Levels>
class Search {
 public:
  Search(const Levels& levels, const float* x, const float* w, uint8_t* codes)
      : levels_(levels), x_(x), codes_(codes) {
    for (int i = 0; i < kBlock; ++i) w_[i] = w ? w[i] : 1.0f;
  }

  // Tries d (rounded to f16) and returns the rounded value.
  float consider(float d) {
    const uint16_t dh = to_f16_scale(d);
    const float dq = f16_to_f32(dh);
    const float id = dq != 0.0f ? 1.0f / dq : 0.0f;
    for (int i = 0; i < kBlock; ++i) level_[i] = levels_.nearest_level(x_[i] * id);
    const float err = block_sum([&](int i) {
      const float e = x_[i] - dq * level_[i];
      return w_[i] * e * e;
    });
    if (err < best_err_) {
      best_err_ = err;
      best_d_ = dh;
      for (int i = 0; i < kBlock; ++i) codes_[i] = levels_.code(level_[i]);
    }
    return dq;
  }

  // Tries d, then the least-squares d for the codes d chose: sum(w x q) / sum(w q q).
  void consider_refined(float d) {
    const float dq = consider(d);
    const float sxq = block_sum([&](int i) { return w_[i] * x_[i] * level_[i]; });
    const float sqq = block_sum([&](int i) { return w_[i] * level_[i] * level_[i]; });
    if (sqq > 0.0f && sxq / sqq != dq) consider(sxq / sqq);
  }

  uint16_t best_d() const { return best_d_; }

 private:
  const Levels& levels_;
  const float* x_;
  float w_[kBlock];
  uint8_t* codes_;
  float level_[kBlock];
  float best_err_ = INFINITY;
  uint16_t best_d_ = 0;
};

// Largest magnitude and the signed value that has it.
float block_amax(const float* x, float* signed_max) {
  float amax = 0.0f;
  *signed_max = 0.0f;
  for (int i = 0; i < kBlock; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      *signed_max = x[i];
    }
  }
  return amax;
}

}  // namespace

uint16_t absmax_uniform_scale(const float* x, int bits, uint8_t* codes) {
  const UniformLevels levels{1 << (bits - 1), (1 << bits) - 1};
  float signed_max;
  const float amax = block_amax(x, &signed_max);
  const uint16_t dh = to_f16_scale(amax / static_cast<float>(levels.offset - 1));
  const float d = f16_to_f32(dh);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < kBlock; ++i) codes[i] = levels.code(levels.nearest_level(x[i] * id));
  return dh;
}

uint16_t search_uniform_scale(const float* x, const float* weights, int bits, uint8_t* codes) {
  const UniformLevels levels{1 << (bits - 1), (1 << bits) - 1};
  const float top = static_cast<float>(levels.offset - 1);  // largest positive level
  float signed_max;
  const float amax = block_amax(x, &signed_max);
  std::fill(codes, codes + kBlock, static_cast<uint8_t>(levels.offset));
  if (amax == 0.0f) return 0;
  Search<UniformLevels> s(levels, x, weights, codes);
  s.consider(amax / top);  // the absmax baseline is always a candidate
  s.consider_refined(signed_max / -static_cast<float>(levels.offset));  // the extreme on the lowest code
  // Divisors from top - top/14 to top + 3 top/14 (Q4: 6.5 .. 8.5), 17 steps.
  for (int step = -8; step <= 8; ++step) {
    const float divisor = top + top / 7.0f * (0.5f + 0.125f * static_cast<float>(step));
    s.consider_refined(amax / divisor);
    s.consider_refined(-amax / divisor);
  }
  return s.best_d();
}

uint16_t search_q4n_scale(const float* x, const float* weights, uint8_t* codes) {
  float signed_max;
  const float amax = block_amax(x, &signed_max);
  std::fill(codes, codes + kBlock, uint8_t{8});  // level 1: the closest to 0
  if (amax == 0.0f) return 0;
  Search<Q4NLevels> s(Q4NLevels{}, x, weights, codes);
  // The extreme on either end level (-127 or 113), then scales around them.
  s.consider_refined(signed_max / -127.0f);
  s.consider_refined(signed_max / 113.0f);
  for (int step = -8; step <= 8; ++step) {
    const float divisor = 120.0f + 2.0f * static_cast<float>(step);  // 104 .. 136
    s.consider_refined(amax / divisor);
    s.consider_refined(-amax / divisor);
  }
  return s.best_d();
}

}  // namespace qrun
