#include "src/runtime/rope.h"

#include <algorithm>
#include <cmath>

namespace qrun {

std::vector<float> rope_inv_freq(const format::HParams& hp, const float* longrope_factors) {
  const int rot = static_cast<int>(hp.rotary_dim ? hp.rotary_dim : hp.head_dim), half = rot / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  // YaRN: frequencies that turn fewer than beta_slow times over the original context are
  // interpolated (divided by the factor), those above beta_fast kept, a ramp between.
  double ramp_low = 0, ramp_high = 1;
  if (hp.rope_scaling == static_cast<uint32_t>(format::RopeScaling::Yarn)) {
    auto correction_dim = [&](double rotations) {
      return rot * std::log(hp.rope_original_max_pos / (rotations * 2 * M_PI)) / (2 * std::log(double{hp.rope_theta}));
    };
    // Rounded outwards to whole dimensions unless the checkpoint says not to (gpt-oss).
    const bool whole = (hp.flags & format::kYarnUntruncated) == 0;
    const double low = correction_dim(hp.rope_beta_fast), high = correction_dim(hp.rope_beta_slow);
    ramp_low = std::max(whole ? std::floor(low) : low, 0.0);
    ramp_high = std::min(whole ? std::ceil(high) : high, static_cast<double>(rot - 1));
    if (ramp_low == ramp_high) ramp_high += 0.001;
  }
  for (int j = 0; j < half; ++j) {
    double f = std::pow(static_cast<double>(hp.rope_theta), -2.0 * j / rot);
    switch (static_cast<format::RopeScaling>(hp.rope_scaling)) {
      case format::RopeScaling::None:
        break;
      case format::RopeScaling::Yarn: {
        const double ramp = std::clamp((j - ramp_low) / (ramp_high - ramp_low), 0.0, 1.0);
        f = f / hp.rope_factor * ramp + f * (1.0 - ramp);
        break;
      }
      case format::RopeScaling::LongRope:
        if (longrope_factors) f /= longrope_factors[j];
        break;
      case format::RopeScaling::Linear:
        f /= hp.rope_factor;
        break;
      case format::RopeScaling::Llama3: {
        // Long wavelengths are slowed by the factor, short ones kept, and the band
        // between interpolated (Meta's llama3 rope scaling).
        const double wavelen = 2.0 * M_PI / f;
        const double orig = hp.rope_original_max_pos;
        const double low_wavelen = orig / hp.rope_low_freq_factor;
        const double high_wavelen = orig / hp.rope_high_freq_factor;
        if (wavelen > low_wavelen) {
          f /= hp.rope_factor;
        } else if (wavelen >= high_wavelen) {
          const double smooth = (orig / wavelen - hp.rope_low_freq_factor) /
                                (hp.rope_high_freq_factor - hp.rope_low_freq_factor);
          f = (1.0 - smooth) * f / hp.rope_factor + smooth * f;
        }
        break;
      }
    }
    inv[static_cast<size_t>(j)] = static_cast<float>(f);
  }
  return inv;
}

std::vector<float> rope_local_inv_freq(const format::HParams& hp) {
  if (hp.rope_local_theta <= 0.0f) return {};
  format::HParams local = hp;
  local.rope_theta = hp.rope_local_theta;
  local.rope_scaling = static_cast<uint32_t>(format::RopeScaling::None);
  return rope_inv_freq(local);
}

float rope_attn_factor(const format::HParams& hp) { return hp.rope_attn_factor > 0 ? hp.rope_attn_factor : 1.0f; }

void rope_apply(float* x, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq, float attn_factor) {
  const int half = static_cast<int>(inv_freq.size());
  float cs[512], sn[512];  // head_dim <= 1024 (validated)
  for (int j = 0; j < half; ++j) {
    const double angle = static_cast<double>(pos) * inv_freq[static_cast<size_t>(j)];
    cs[j] = static_cast<float>(std::cos(angle) * attn_factor);
    sn[j] = static_cast<float>(std::sin(angle) * attn_factor);
  }
  for (int h = 0; h < n_heads; ++h) {
    float* v = x + static_cast<int64_t>(h) * head_dim;
    for (int j = 0; j < half; ++j) {
      const float a = v[j], b = v[j + half];
      v[j] = a * cs[j] - b * sn[j];
      v[j + half] = a * sn[j] + b * cs[j];
    }
  }
}

}  // namespace qrun
