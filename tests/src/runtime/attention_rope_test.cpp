// RoPE and tiled attention against straightforward double-precision references.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qrun/kv_cache.h"
#include "quant/quantize.h"
#include "src/runtime/attention.h"
#include "src/runtime/rope.h"

namespace qrun {
namespace {

format::HParams rope_params(uint32_t head_dim, float theta) {
  format::HParams hp{};
  hp.head_dim = head_dim;
  hp.rope_theta = theta;
  return hp;
}

// Rotate-half RoPE: pair (i, i + d/2) rotated by pos * theta^(-2i/d), the frequency
// rounded to f32 as Hugging Face computes it. Tolerance 2e-5 relative (float math vs
// double reference).
TEST(Rope, MatchesRotateHalfReference) {
  const int d = 64, heads = 3;
  const auto hp = rope_params(d, 10000.0f);
  const auto inv = rope_inv_freq(hp);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (int pos : {0, 1, 17, 511, 4095}) {
    std::vector<float> x(d * heads);
    for (auto& v : x) v = nd(rng);
    std::vector<float> y = x;
    rope_apply(y.data(), heads, d, pos, inv);
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < d / 2; ++i) {
        const double a = pos * static_cast<double>(static_cast<float>(std::pow(10000.0, -2.0 * i / d)));
        const double x0 = x[h * d + i], x1 = x[h * d + i + d / 2];
        EXPECT_NEAR(y[h * d + i], x0 * std::cos(a) - x1 * std::sin(a), 2e-5 * (1 + std::abs(x0) + std::abs(x1)));
        EXPECT_NEAR(y[h * d + i + d / 2], x0 * std::sin(a) + x1 * std::cos(a), 2e-5 * (1 + std::abs(x0) + std::abs(x1)));
      }
    }
  }
}

// Llama 3 scaling (factor 8, low 1, high 4, original 8192): high frequencies kept,
// low frequencies divided by the factor, the band between interpolated.
TEST(Rope, Llama3ScalingBands) {
  auto hp = rope_params(128, 500000.0f);
  const auto plain = rope_inv_freq(hp);
  hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Llama3);
  hp.rope_factor = 8;
  hp.rope_low_freq_factor = 1;
  hp.rope_high_freq_factor = 4;
  hp.rope_original_max_pos = 8192;
  const auto scaled = rope_inv_freq(hp);
  for (size_t i = 0; i < plain.size(); ++i) {
    const double wavelen = 2 * M_PI / plain[i];
    if (wavelen < 8192.0 / 4) EXPECT_FLOAT_EQ(scaled[i], plain[i]);
    else if (wavelen > 8192.0 / 1) EXPECT_FLOAT_EQ(scaled[i], plain[i] / 8);
    else {
      EXPECT_LE(scaled[i], plain[i]);
      EXPECT_GE(scaled[i], plain[i] / 8);
    }
  }
  hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Linear);
  hp.rope_factor = 4;
  const auto linear = rope_inv_freq(hp);
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_FLOAT_EQ(linear[i], plain[i] / 4);
}

// Tiled online-softmax attention equals softmax(qK^T/sqrt(d))V in double over the values
// the cache holds (decoded), for lengths below, equal to and across several tiles, each
// KV type pair, heads whose q8_0 and q4_0 groups are 32 (64), 16 (80) and 8 (stories260K's 8),
// and three query heads sharing each KV head. Tolerance 1e-4: only f32 accumulation differs.
TEST(Attention, TiledEqualsReference) {
  for (const int d : {64, 80, 8}) {
    for (const auto& [kt, vt] : {std::pair{KvType::F16, KvType::F16}, std::pair{KvType::Q8_0, KvType::Q8_0},
                                 std::pair{KvType::Q8_0, KvType::F16}, std::pair{KvType::F16, KvType::Q8_0},
                                 std::pair{KvType::Q4_0, KvType::Q4_0}, std::pair{KvType::Q8_0, KvType::Q4_0}}) {
      const int kv_heads = 2, kv_dim = d * kv_heads, n_pos = 3 * kAttentionTile + 5;
      KvCache cache(1, n_pos, kv_dim, d, kt, vt);
      std::mt19937 rng(2);
      std::normal_distribution<float> nd(0.f, 2.f);
      std::vector<float> k(size_t(n_pos) * kv_dim), v(k.size());
      for (auto& x : k) x = nd(rng);
      for (auto& x : v) x = nd(rng);
      for (int t = 0; t < n_pos; ++t) {
        cache.store(0, t, &k[size_t(t) * kv_dim], &v[size_t(t) * kv_dim]);
        cache.decode_key(cache.key(0, t), &k[size_t(t) * kv_dim]);  // what the cache holds
        cache.decode_value(cache.value(0, t), &v[size_t(t) * kv_dim]);
      }
      const int heads = 3;  // query heads per KV head
      std::vector<float> q(size_t(heads) * d), out(q.size()), tile(size_t(heads) * kAttentionTile);
      for (auto& x : q) x = nd(rng);
      for (int head = 0; head < kv_heads; ++head) {
        for (int len : {1, 7, kAttentionTile, kAttentionTile + 1, n_pos}) {
          const int begin = len == n_pos ? 3 : 0;  // also a window that does not start at 0
          attend_heads(q.data(), heads, cache, 0, head * d, begin, len, d, out.data(), tile.data());
          for (int h = 0; h < heads; ++h) {
            std::vector<double> s;
            double mx = -1e300;
            for (int t = begin; t < len; ++t) {
              double dot = 0;
              for (int j = 0; j < d; ++j) dot += q[size_t(h * d + j)] * double(k[size_t(t) * kv_dim + head * d + j]);
              s.push_back(dot / std::sqrt(double(d)));
              mx = std::max(mx, s.back());
            }
            double z = 0;
            for (auto& x : s) z += (x = std::exp(x - mx));
            for (int j = 0; j < d; ++j) {
              double want = 0;
              for (int t = begin; t < len; ++t) want += s[t - begin] / z * v[size_t(t) * kv_dim + head * d + j];
              ASSERT_NEAR(out[size_t(h * d + j)], want, 1e-4 * (1 + std::abs(want)))
                  << kv_type_name(kt) << "/" << kv_type_name(vt) << " head_dim " << d << " len " << len << " head "
                  << h << " j " << j;
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qrun
