// Two bits leave four levels; what decides a Q2K block's error is where they sit. Each
// sub-block of 16 gets its own range (scale and minimum), found by trying the data's
// range trimmed at either end and refitting both by weighted least squares for the codes
// each trial picks (llama.cpp's make_qkx2_quants searches the same family). The 16
// ranges are then stored as 4-bit multiples of two f16 steps; rounding them to that grid
// moves the levels, so each sub-block finally tries its neighbouring grid points too.
#include "quant/q2k.h"

#include <algorithm>
#include <cmath>

#include "quant/quantize.h"
#include "quant/round_even.h"

namespace qrun {

namespace {

constexpr int kSub = 16;

// Levels: scale * code - min, code in [0, 3].
struct Range {
  float scale = 0.0f, min = 0.0f;
};

// inv_scale: 1 / r.scale, or 0 for an empty range (every code 0).
int nearest_code(float x, const Range& r, float inv_scale) {
  // std::min/max order: a NaN (never from finite weights) lands on code 0.
  return static_cast<int>(round_even(std::min(3.0f, std::max(0.0f, (x + r.min) * inv_scale))));
}

float inverse(float scale) { return scale > 0.0f ? 1.0f / scale : 0.0f; }

float range_error(const float* x, const float* w, const Range& r, uint8_t* codes = nullptr) {
  const float inv = inverse(r.scale);
  float err = 0.0f;
  for (int i = 0; i < kSub; ++i) {
    const int c = nearest_code(x[i], r, inv);
    const float e = x[i] - (r.scale * static_cast<float>(c) - r.min);
    err += w[i] * e * e;
    if (codes) codes[i] = static_cast<uint8_t>(c);
  }
  return err;
}

// The weighted least-squares scale and minimum for the codes `r` picks; the minimum
// stays >= 0 (the lowest level <= 0) because the format stores it unsigned.
Range refit(const float* x, const float* w, const Range& r) {
  const float inv = inverse(r.scale);
  double s = 0, sc = 0, scc = 0, sx = 0, sxc = 0;
  for (int i = 0; i < kSub; ++i) {
    const double c = nearest_code(x[i], r, inv);
    s += w[i];
    sc += w[i] * c;
    scc += w[i] * c * c;
    sx += w[i] * x[i];
    sxc += w[i] * x[i] * c;
  }
  const double det = s * scc - sc * sc;
  if (det <= 0.0) return r;
  double scale = (s * sxc - sc * sx) / det, lo = (scc * sx - sc * sxc) / det;
  if (lo > 0.0) {
    lo = 0.0;
    scale = sxc / scc;
  }
  if (!(scale > 0.0)) return r;
  return {static_cast<float>(scale), static_cast<float>(-lo)};
}

Range fit_sub_block(const float* x, const float* w) {
  const float lo = std::min(0.0f, *std::min_element(x, x + kSub));
  const float hi = *std::max_element(x, x + kSub);
  const float width = hi - lo;
  if (!(width > 0.0f)) return {0.0f, -lo};
  Range best{width / 3.0f, -lo};
  float best_err = range_error(x, w, best);
  auto consider = [&](const Range& r) {
    const float err = range_error(x, w, r);
    if (err < best_err) {
      best_err = err;
      best = r;
    }
  };
  for (int a = 0; a < 4; ++a) {
    for (int b = 0; b < 4; ++b) {
      const float l = std::min(0.0f, lo + width * 0.08f * static_cast<float>(a));
      const float h = hi - width * 0.08f * static_cast<float>(b);
      if (!(h > l)) continue;
      const Range r{(h - l) / 3.0f, -l};
      consider(r);
      const Range fitted = refit(x, w, r);
      consider(fitted);
      consider(refit(x, w, fitted));
    }
  }
  return best;
}

int grid_index(float v, float step) {
  return step > 0.0f ? static_cast<int>(round_even(std::min(15.0f, std::max(0.0f, v / step)))) : 0;
}

void quantize_super_block(const float* x, const float* w, BlockQ2K* out) {
  Range fits[16];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int s = 0; s < 16; ++s) {
    fits[s] = fit_sub_block(x + s * kSub, w + s * kSub);
    max_scale = std::max(max_scale, fits[s].scale);
    max_min = std::max(max_min, fits[s].min);
  }
  out->d = f32_to_f16(std::min(max_scale / 15.0f, 65504.0f));
  out->dmin = f32_to_f16(std::min(max_min / 15.0f, 65504.0f));
  const float d = f16_to_f32(out->d), dmin = f16_to_f32(out->dmin);
  std::fill(out->qs, out->qs + 64, uint8_t{0});
  for (int s = 0; s < 16; ++s) {
    const float* xs = x + s * kSub;
    const float* ws = w + s * kSub;
    const int sc0 = grid_index(fits[s].scale, d), m0 = grid_index(fits[s].min, dmin);
    int best_sc = sc0, best_m = m0;
    float best_err = INFINITY;
    for (int sc = std::max(0, sc0 - 1); sc <= std::min(15, sc0 + 1); ++sc) {
      for (int m = std::max(0, m0 - 1); m <= std::min(15, m0 + 1); ++m) {
        const float err = range_error(xs, ws, {d * static_cast<float>(sc), dmin * static_cast<float>(m)});
        if (err < best_err) {
          best_err = err;
          best_sc = sc;
          best_m = m;
        }
      }
    }
    out->scales[s] = static_cast<uint8_t>(best_sc | best_m << 4);
    uint8_t codes[kSub];
    range_error(xs, ws, {d * static_cast<float>(best_sc), dmin * static_cast<float>(best_m)}, codes);
    for (int i = 0; i < kSub; ++i) {
      const int e = s * kSub + i;
      out->qs[e / 128 * 32 + e % 32] |= static_cast<uint8_t>(codes[i] << (2 * (e % 128 / 32)));
    }
  }
}

}  // namespace

void quantize_q2k(const float* x, int64_t n, const float* importance, BlockQ2K* out) {
  for (int64_t b = 0; b * kSuperBlock < n; ++b) {
    const int64_t base = b * kSuperBlock, len = std::min<int64_t>(kSuperBlock, n - base);
    // NaN -> 0 as in the other types; the padded tail weighs nothing.
    float xs[kSuperBlock] = {}, ws[kSuperBlock] = {};
    for (int64_t i = 0; i < len; ++i) {
      xs[i] = std::isnan(x[base + i]) ? 0.0f : std::clamp(x[base + i], -65504.0f, 65504.0f);
      ws[i] = importance ? std::max(importance[base + i], 0.0f) : 1.0f;
    }
    quantize_super_block(xs, ws, out + b);
  }
}

void dequantize_q2k(const BlockQ2K* in, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const BlockQ2K& b = in[i / kSuperBlock];
    const int e = static_cast<int>(i % kSuperBlock);
    out[i] = f16_to_f32(b.d) * static_cast<float>(q2k_scale(b, e) * q2k_code(b, e)) -
             f16_to_f32(b.dmin) * static_cast<float>(q2k_min(b, e));
  }
}

}  // namespace qrun
