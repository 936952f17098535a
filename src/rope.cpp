#include "src/rope.h"

#include <cmath>

namespace qrun {

std::vector<float> rope_inv_freq(const format::HParams& hp) {
  const int half = static_cast<int>(hp.head_dim / 2);
  std::vector<float> inv(static_cast<size_t>(half));
  for (int j = 0; j < half; ++j) {
    double f = std::pow(static_cast<double>(hp.rope_theta), -2.0 * j / hp.head_dim);
    switch (static_cast<format::RopeScaling>(hp.rope_scaling)) {
      case format::RopeScaling::None:
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

void rope_apply(float* x, int n_heads, int head_dim, int pos, const std::vector<float>& inv_freq) {
  const int half = head_dim / 2;
  float cs[512], sn[512];  // head_dim <= 1024 (validated)
  for (int j = 0; j < half; ++j) {
    const double angle = static_cast<double>(pos) * inv_freq[static_cast<size_t>(j)];
    cs[j] = static_cast<float>(std::cos(angle));
    sn[j] = static_cast<float>(std::sin(angle));
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
