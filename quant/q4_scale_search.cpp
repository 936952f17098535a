// Q4 has only 16 levels, so the choice of scale dominates its error. Plain absmax
// (d = amax/7) wastes code -8 and spends resolution on one outlier; instead we try a
// grid of candidate scales of both signs (a negative d puts the extra -8 level on the
// positive side), refine each with the least-squares optimal d for its codes, and keep
// whichever has the smallest squared error measured with the f16 scale actually stored.
#include "quant/q4_scale_search.h"

#include <algorithm>
#include <cmath>

#include "quant/quantize.h"

namespace qrun {

namespace {

constexpr int kBlock = 32;

void assign_codes(const float* x, float d, uint8_t* codes) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < kBlock; ++i) {
    const float q = std::nearbyint(x[i] * id) + 8.0f;
    codes[i] = std::isnan(q) ? uint8_t{8} : static_cast<uint8_t>(std::clamp(q, 0.0f, 15.0f));  // NaN: code of 0
  }
}

float squared_error(const float* x, float d, const uint8_t* codes) {
  float err = 0.0f;
  for (int i = 0; i < kBlock; ++i) {
    const float e = x[i] - d * static_cast<float>(codes[i] - 8);
    err += e * e;
  }
  return err;
}

// Rounds d to f16, clamped to the finite range.
uint16_t to_f16_scale(float d) { return f32_to_f16(std::clamp(d, -65504.0f, 65504.0f)); }

}  // namespace

uint16_t q4_absmax_scale(const float* x, uint8_t* codes) {
  float amax = 0.0f;
  for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
  const uint16_t dh = to_f16_scale(amax / 7.0f);
  assign_codes(x, f16_to_f32(dh), codes);
  return dh;
}

uint16_t q4_search_scale(const float* x, uint8_t* codes) {
  float amax = 0.0f, signed_max = 0.0f;
  for (int i = 0; i < kBlock; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      signed_max = x[i];
    }
  }
  uint16_t best_d = 0;
  std::fill(codes, codes + kBlock, uint8_t{8});
  if (amax == 0.0f) return best_d;

  float best_err = INFINITY;
  uint8_t trial[kBlock];
  auto consider = [&](float d) {
    const uint16_t dh = to_f16_scale(d);
    const float dq = f16_to_f32(dh);
    assign_codes(x, dq, trial);
    const float err = squared_error(x, dq, trial);
    if (err < best_err) {
      best_err = err;
      best_d = dh;
      std::copy(trial, trial + kBlock, codes);
    }
    return dq;
  };
  auto consider_refined = [&](float d) {
    const float dq = consider(d);
    // Least-squares d for the codes just chosen: d* = sum(x q) / sum(q q).
    float sxq = 0.0f, sqq = 0.0f;
    for (int i = 0; i < kBlock; ++i) {
      const float q = static_cast<float>(trial[i] - 8);
      sxq += x[i] * q;
      sqq += q * q;
    }
    if (sqq > 0.0f && sxq / sqq != dq) consider(sxq / sqq);
  };

  consider(amax / 7.0f);               // the absmax baseline is always a candidate
  consider_refined(signed_max / -8.0f);  // llama.cpp Q4_0: the extreme maps to code 0
  for (int step = -8; step <= 8; ++step) {
    const float divisor = 7.5f + 0.125f * static_cast<float>(step);  // 6.5 .. 8.5
    consider_refined(amax / divisor);
    consider_refined(-amax / divisor);
  }
  return best_d;
}

}  // namespace qrun
