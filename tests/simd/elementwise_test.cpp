// Elementwise / reduction kernels on every compiled target against the scalar twins,
// on sizes that exercise whole vectors and scalar tails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../quant/test_data.h"
#include "quant/block_formats.h"
#include "quant/quantize.h"
#include "simd/kernels.h"
#include "simd/reference.h"
#include "target_loop.h"

namespace qrun {
namespace {

using testing::Distribution;
using testing::for_each_target;
using testing::random_values;

constexpr int64_t kSizes[] = {1, 3, 15, 16, 17, 33, 64, 172, 2048, 2049};

double abs_dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::fabs(double(a[i]) * b[i]);
  return s;
}

TEST(Elementwise, SimdTargetNameIsReported) {
  const std::string name = simd_target_name();
  EXPECT_FALSE(name.empty());
  std::printf("simd_target_name() = %s\n", name.c_str());
  for_each_target([] { std::printf("  compiled and supported: %s\n", simd_target_name()); });
}

TEST(Elementwise, DotProductsMatchReference) {
  for (int64_t n : kSizes) {
    const auto a = random_values(Distribution::StudentT3, n, 1, 1.0f);
    const auto b = random_values(Distribution::Normal, n, 2, 1.0f);
    const float expect = ref::dot_f32(a.data(), b.data(), n);
    // f32 accumulation in a different order: within 1e-6 of sum |a b| (n <= 2049).
    const double tol = 1e-6 * abs_dot(a.data(), b.data(), n) + 1e-30;
    for_each_target([&] { EXPECT_NEAR(dot_f32(a.data(), b.data(), n), expect, tol) << n; });
  }
}

TEST(Elementwise, AxpyAddMatchReference) {
  for (int64_t n : kSizes) {
    const auto x = random_values(Distribution::Laplace, n, 3, 1.0f);
    const auto y0 = random_values(Distribution::Normal, n, 4, 1.0f);
    const float a = 0.37f;
    for_each_target([&] {
      std::vector<float> y = y0;
      axpy_f32(y.data(), a, x.data(), n);
      // A fused multiply-add may round once instead of twice: within 2 ulp of the terms.
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(y[size_t(i)], y0[size_t(i)] + a * x[size_t(i)],
                    2.4e-7f * (std::fabs(a * x[size_t(i)]) + std::fabs(y0[size_t(i)])));
      std::vector<float> sum = y0;
      add_f32(sum.data(), x.data(), n);  // exact
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sum[size_t(i)], y0[size_t(i)] + x[size_t(i)]);
    });
  }
}

TEST(Elementwise, RmsnormSwigluSoftmaxMatchReference) {
  for (int64_t n : kSizes) {
    const auto x = random_values(Distribution::StudentT3, n, 5, 2.0f);
    const auto wgt = random_values(Distribution::Normal, n, 6, 1.0f);
    const auto up = random_values(Distribution::Normal, n, 7, 1.0f);
    std::vector<float> norm_ref(static_cast<size_t>(n)), swi_ref = x, soft_ref = x;
    ref::rmsnorm(norm_ref.data(), x.data(), wgt.data(), n, 1e-5f);
    ref::swiglu(swi_ref.data(), up.data(), n);
    ref::softmax(soft_ref.data(), n);
    for_each_target([&] {
      std::vector<float> norm(static_cast<size_t>(n)), swi = x, soft = x;
      rmsnorm(norm.data(), x.data(), wgt.data(), n, 1e-5f);
      swiglu(swi.data(), up.data(), n);
      softmax(soft.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const size_t k = size_t(i);
        // rmsnorm: f32 vs f64 sum of squares, then 2 products: 1e-5 relative.
        ASSERT_NEAR(norm[k], norm_ref[k], 1e-5f * std::fabs(norm_ref[k]) + 1e-30f) << n << " " << i;
        // swiglu: vector exp is within a few ulp, plus a division: 1e-5 relative
        // (absolute 1e-30 for outputs that underflow towards zero).
        ASSERT_NEAR(swi[k], swi_ref[k], 1e-5f * std::fabs(swi_ref[k]) + 1e-30f) << n << " " << i;
        // softmax: exp error and the normalising sum: 1e-5 relative.
        ASSERT_NEAR(soft[k], soft_ref[k], 1e-5f * soft_ref[k] + 1e-30f) << n << " " << i;
      }
    });
  }
}

// GeGLU with tanh GELU (Gemma) against the double formula: Highway's tanh is within a
// few ulp; 2e-6 relative plus 1e-6 absolute near the zeros of gelu.
TEST(Elementwise, GegluTanhMatchesReference) {
  for (int64_t n : kSizes) {
    const auto x = random_values(Distribution::StudentT3, n, 11, 3.0f);
    const auto up = random_values(Distribution::Normal, n, 12, 1.0f);
    std::vector<float> want = x;
    ref::geglu_tanh(want.data(), up.data(), n);
    for_each_target([&] {
      std::vector<float> got = x;
      geglu_tanh(got.data(), up.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(got[size_t(i)], want[size_t(i)], 2e-6f * std::fabs(want[size_t(i)]) + 1e-6f) << n << " x=" << x[size_t(i)];
    });
  }
}

// gpt-oss's clamped SwiGLU against the double formula, on values well past the limit of 7
// on both sides (Student-t, scale 4): 1e-5 relative, 1e-6 absolute near its zeros.
TEST(Elementwise, SwigluClampedMatchesReference) {
  for (int64_t n : kSizes) {
    const auto x = random_values(Distribution::StudentT3, n, 15, 4.0f);
    const auto up = random_values(Distribution::StudentT3, n, 16, 4.0f);
    std::vector<float> want = x;
    ref::swiglu_clamped(want.data(), up.data(), n, 7.0f);
    for_each_target([&] {
      std::vector<float> got = x;
      swiglu_clamped(got.data(), up.data(), n, 7.0f);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(got[size_t(i)], want[size_t(i)], 1e-5f * std::fabs(want[size_t(i)]) + 1e-6f)
            << n << " x=" << x[size_t(i)] << " up=" << up[size_t(i)];
    });
  }
}

// A value's activation must not depend on whether it falls in a full vector or in the
// tail: forward() runs it over a batch's rows at once, so a token's hidden state (and
// its logits) changed with the batch size when the tail took std::exp.
TEST(Elementwise, GatedActivationsDoNotDependOnThePosition) {
  const auto x = random_values(Distribution::StudentT3, 67, 13, 3.0f);
  const auto up = random_values(Distribution::Normal, 67, 14, 1.0f);
  for_each_target([&] {
    const auto clamped = +[](float* gate, const float* up, int64_t n) { swiglu_clamped(gate, up, n, 7.0f); };
    for (auto* activation : {&swiglu, &geglu_tanh, clamped}) {
      std::vector<float> whole = x;
      activation(whole.data(), up.data(), 67);
      for (int64_t from = 1; from < 67; from += 5) {  // the first elements shifted into tails
        std::vector<float> part(x.begin() + from, x.end());
        activation(part.data(), up.data() + from, 67 - from);
        for (int64_t i = from; i < 67; ++i) ASSERT_EQ(part[size_t(i - from)], whole[size_t(i)]) << from << " " << i;
      }
    }
  });
}

TEST(Elementwise, F32ToF16RowMatchesScalarConversion) {
  for (int64_t n : kSizes) {
    auto x = random_values(Distribution::StudentT3, n, 9, 100.0f);
    // Include the edges of the f16 range: overflow to inf, subnormals, ties.
    const float specials[] = {65504.0f, 65520.0f, 1e6f, -1e6f, 0x1p-24f, 0x1p-25f, 3e-6f, 0.0f, -0.0f, 1.0009765625f};
    for (size_t i = 0; i < x.size() && i < std::size(specials); ++i) x[i * 7 % x.size()] = specials[i];
    std::vector<uint16_t> expect(static_cast<size_t>(n));
    quantize_row(DType::F16, x.data(), n, expect.data());
    for_each_target([&] {
      std::vector<uint16_t> got(static_cast<size_t>(n));
      f32_to_f16_row(x.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[size_t(i)], expect[size_t(i)]) << n << " x=" << x[size_t(i)];
    });
  }
}

// Rows of `heads` heads of head_dim values as the KV cache stores them in type t.
std::vector<uint8_t> kv_rows(KvType t, const std::vector<float>& x, int64_t head_dim) {
  if (t == KvType::F16) {
    std::vector<uint8_t> out(x.size() * 2);
    quantize_row(DType::F16, x.data(), static_cast<int64_t>(x.size()), out.data());
    return out;
  }
  const int64_t g = kv_group(static_cast<int>(head_dim));
  std::vector<uint8_t> out(x.size() / size_t(g) * size_t(kv_block_bytes(t, int(g))));
  if (t == KvType::IQ4_NL) {  // the value of largest magnitude on the level -127, the rest at their nearest
    for (size_t b = 0; b < x.size() / size_t(g); ++b) {
      const float* xb = &x[b * size_t(g)];
      float m = 0;
      for (int64_t i = 0; i < g; ++i) m = std::abs(xb[i]) > std::abs(m) ? xb[i] : m;
      const uint16_t d = f32_to_f16(m / kQ4NLevels[0]);
      uint8_t* block = &out[b * size_t(2 + g / 2)];
      std::memcpy(block, &d, 2);
      auto code = [&](float v) {
        int best = 0;
        for (int k = 1; k < 16; ++k)
          if (std::abs(v - f16_to_f32(d) * kQ4NLevels[k]) < std::abs(v - f16_to_f32(d) * kQ4NLevels[best])) best = k;
        return best;
      };
      for (int64_t i = 0; i < g / 2; ++i) block[2 + i] = uint8_t(code(xb[i]) | code(xb[i + g / 2]) << 4);
    }
    return out;
  }
  if (t == KvType::Q4_0) {  // the value of largest magnitude is d * -8: 16 steps of d from it
    for (size_t b = 0; b < x.size() / size_t(g); ++b) {
      const float* xb = &x[b * size_t(g)];
      float m = 0;
      for (int64_t i = 0; i < g; ++i) m = std::abs(xb[i]) > std::abs(m) ? xb[i] : m;
      const uint16_t d = f32_to_f16(m / -8);
      uint8_t* block = &out[b * size_t(2 + g / 2)];
      std::memcpy(block, &d, 2);
      auto code = [&](float v) { return int(std::clamp<long>(std::lround(v / f16_to_f32(d)) + 8, 0, 15)); };
      for (int64_t i = 0; i < g / 2; ++i) block[2 + i] = uint8_t(code(xb[i]) | code(xb[i + g / 2]) << 4);
    }
    return out;
  }
  for (size_t b = 0; b < x.size() / size_t(g); ++b) {
    float amax = 0;
    for (int64_t i = 0; i < g; ++i) amax = std::max(amax, std::abs(x[b * size_t(g) + size_t(i)]));
    const uint16_t d = f32_to_f16(amax / 127);
    uint8_t* block = &out[b * size_t(g + 2)];
    std::memcpy(block, &d, 2);
    for (int64_t i = 0; i < g; ++i)
      block[2 + i] = uint8_t(int8_t(std::lround(x[b * size_t(g) + size_t(i)] / std::max(f16_to_f32(d), 1e-30f))));
  }
  return out;
}

// attend (tiled, online softmax, f32) against the plain double softmax, for head sizes
// that take 16-, 8-, 4- and 1-lane vectors (and q8_0, q4_0 and iq4_nl groups of 32, 16, 8,
// 4 and 2, the 4-bit types' halves down to one value), key
// counts below, at and across tile boundaries, each pair of KV types, and 1, 3 and 8
// query heads sharing the rows, without and with gpt-oss's sinks (per head: below the
// scores, among them, and far above them, where the sink takes nearly all the weight).
// The cached values are shared, so only f32 accumulation and the vector exp differ: 1e-4
// relative.
TEST(Elementwise, AttentionMatchesReference) {
  for (int64_t hd : {8, 6, 12, 64, 128, 80}) {
    const int64_t width = 3 * hd, n_max = 2 * kAttentionTile + 9;
    const auto q = random_values(Distribution::Normal, kMaxAttendHeads * hd, 7, 1.0f);
    const auto kf = random_values(Distribution::StudentT3, n_max * width, 8, 2.0f);
    const auto vf = random_values(Distribution::Normal, n_max * width, 9, 1.0f);
    for (const auto& [kt, vt] : {std::pair{KvType::F16, KvType::F16}, std::pair{KvType::Q8_0, KvType::Q8_0},
                                 std::pair{KvType::Q8_0, KvType::F16}, std::pair{KvType::F16, KvType::Q8_0},
                                 std::pair{KvType::Q4_0, KvType::Q4_0}, std::pair{KvType::Q4_0, KvType::F16},
                                 std::pair{KvType::F16, KvType::Q4_0}, std::pair{KvType::Q8_0, KvType::Q4_0},
                                 std::pair{KvType::IQ4_NL, KvType::IQ4_NL}, std::pair{KvType::Q8_0, KvType::IQ4_NL},
                                 std::pair{KvType::IQ4_NL, KvType::F16}}) {
      const auto kb = kv_rows(kt, kf, hd), vb = kv_rows(vt, vf, hd);
      // The second of three heads per row.
      const KvRows k{kb.data() + kv_col_offset(kt, int(hd), int(hd)), kv_row_bytes(kt, int(width), int(hd)), kt};
      const KvRows v{vb.data() + kv_col_offset(vt, int(hd), int(hd)), kv_row_bytes(vt, int(width), int(hd)), vt};
      // Plain 1/sqrt(head_dim); Gemma 2's query_pre_attn_scalar scale with soft-capping at
      // 50 and at 2 (a cap the scores reach, so the tanh shapes them).
      const float sink_values[kMaxAttendHeads] = {-3.0f, 0.5f, 30.0f, 1.5f, -0.5f, 2.0f, 0.0f, 4.0f};
      for (const auto& [scale, softcap] : {std::pair{0.0f, 0.0f}, std::pair{0.2f, 50.0f}, std::pair{0.5f, 2.0f}}) {
        for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{kAttentionTile}, int64_t{kAttentionTile + 1}, n_max}) {
          for (int64_t heads : {int64_t{1}, int64_t{3}, int64_t{kMaxAttendHeads}}) {
            for (const float* sinks : {static_cast<const float*>(nullptr), sink_values + (heads == 1 ? 2 : 0)}) {
              std::vector<float> want(static_cast<size_t>(heads * hd));
              ref::attend({q.data(), heads, k, v, n, hd, want.data(), nullptr, scale, softcap, sinks});
              for_each_target([&] {
                std::vector<float> out(want.size()), tile(size_t(heads) * kAttentionTile);
                attend({q.data(), heads, k, v, n, hd, out.data(), tile.data(), scale, softcap, sinks});
                for (size_t j = 0; j < want.size(); ++j)
                  ASSERT_NEAR(out[j], want[j], 1e-4 * (1 + std::abs(want[j])))
                      << kv_type_name(kt) << "/" << kv_type_name(vt) << " head_dim " << hd << " keys " << n << " heads "
                      << heads << " j " << j << " scale " << scale << " cap " << softcap << " sinks " << (sinks != nullptr);
              });
            }
          }
        }
      }
    }
  }
}

// Rows that see keys up to their own ends (a prompt's tokens sharing a call, each causal)
// give the same bits as each row alone over its own keys, on every target: masked keys
// weigh nothing, and a row's sums run in the same order however many rows share a call
// (what keeps a prompt's logits independent of its batching).
TEST(Elementwise, AttentionRowsWithOwnKeyEndsEqualEachRowAlone) {
  for (int64_t hd : {8, 12, 64, 128}) {
    const int64_t n = 2 * kAttentionTile + 9;
    const auto q = random_values(Distribution::Normal, kMaxAttendHeads * hd, 17, 1.0f);
    const auto kf = random_values(Distribution::StudentT3, n * hd, 18, 2.0f);
    const auto vf = random_values(Distribution::Normal, n * hd, 19, 1.0f);
    for (const auto& [kt, vt] : {std::pair{KvType::F16, KvType::F16}, std::pair{KvType::Q8_0, KvType::Q8_0},
                                 std::pair{KvType::Q4_0, KvType::Q4_0}, std::pair{KvType::IQ4_NL, KvType::IQ4_NL}}) {
      const auto kb = kv_rows(kt, kf, hd), vb = kv_rows(vt, vf, hd);
      const KvRows k{kb.data(), kv_row_bytes(kt, int(hd), int(hd)), kt}, v{vb.data(), kv_row_bytes(vt, int(hd), int(hd)), vt};
      const int64_t ends[kMaxAttendHeads] = {1, 5, kAttentionTile, kAttentionTile + 1, 100, n, 130, 3};
      for (const float softcap : {0.0f, 2.0f}) {
        for (int64_t rows : {int64_t{2}, int64_t{5}, int64_t{kMaxAttendHeads}}) {
          const int64_t keys = *std::max_element(ends, ends + rows);
          for_each_target([&] {
            std::vector<float> together(size_t(rows * hd)), tile(size_t(kMaxAttendHeads) * kAttentionTile);
            attend({q.data(), rows, k, v, keys, hd, together.data(), tile.data(), 0.0f, softcap, nullptr, ends});
            for (int64_t h = 0; h < rows; ++h) {
              std::vector<float> alone(static_cast<size_t>(hd), 0.0f);
              attend({q.data() + h * hd, 1, k, v, ends[h], hd, alone.data(), tile.data(), 0.0f, softcap});
              ASSERT_EQ(0, std::memcmp(alone.data(), &together[size_t(h * hd)], size_t(hd) * 4))
                  << kv_type_name(kt) << " head_dim " << hd << " rows " << rows << " row " << h << " cap " << softcap;
            }
          });
        }
      }
    }
  }
}

}  // namespace
}  // namespace qrun
