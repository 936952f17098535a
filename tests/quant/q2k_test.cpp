// Q2K (GGUF Q2_K super-blocks): layout against llama.cpp's block as the GGUF importer
// decodes it, exact round trips of representable data, and the error the range search
// leaves next to Q3's and a plain min/max fit's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "convert/gguf_quants.h"
#include "convert/gguf_reader.h"
#include "quant/quantize.h"
#include "round_trip.h"
#include "test_data.h"

namespace qrun {
namespace {

using testing::Distribution;
using testing::random_values;
using testing::rmse;
using testing::round_trip;

TEST(Q2K, GeometryIsGgufQ2K) {
  EXPECT_EQ(dtype_block_elems(DType::Q2K), 256);
  EXPECT_EQ(dtype_row_bytes(DType::Q2K, 2048), 8 * 84);
  EXPECT_EQ(dtype_row_bytes(DType::Q2K, 257), 2 * 84);  // the tail is padded to a whole super-block
  EXPECT_DOUBLE_EQ(dtype_bits_per_weight(DType::Q2K), 2.625);
}

// The bytes qrun writes decode the same through the GGUF importer's Q2_K decoder
// (convert/gguf_quants.cpp, written from llama.cpp's dequantize_row_q2_K).
TEST(Q2K, BlocksDecodeAsGgufQ2K) {
  for (Distribution dist : {Distribution::Normal, Distribution::StudentT3, Distribution::Laplace}) {
    const int64_t n = 256 * 6;
    const auto x = random_values(dist, n, 3);
    std::vector<uint8_t> bytes(static_cast<size_t>(dtype_row_bytes(DType::Q2K, n)));
    quantize_row(DType::Q2K, x.data(), n, bytes.data());
    std::vector<float> ours(static_cast<size_t>(n)), gguf(static_cast<size_t>(n));
    dequantize_row(DType::Q2K, bytes.data(), n, ours.data());
    gguf_dequantize_row(static_cast<uint32_t>(GgmlType::Q2_K), bytes.data(), n, gguf.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(ours[size_t(i)], gguf[size_t(i)]) << i;
  }
}

// Sub-blocks whose values are sc * code - m on integer grids with d = dmin = 1 (scale 15
// and minimum 15 both present, so the 4-bit grids are exactly those): stored exactly.
TEST(Q2K, RepresentableValuesRoundTripExactly) {
  std::vector<float> x(512);
  for (int s = 0; s < 32; ++s) {
    const int sc = s == 0 ? 15 : 1 + (s * 7) % 15, m = s == 1 ? 15 : (s * 5) % 16;
    for (int i = 0; i < 16; ++i) {
      int code = (i * 3 + s) % 4;
      if (i == 0) code = 0;  // both ends present: the range is the sub-block's own
      if (i == 1) code = 3;
      x[size_t(s * 16 + i)] = static_cast<float>(sc * code - m);
    }
  }
  const auto y = round_trip(DType::Q2K, x);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i]) << i;
}

TEST(Q2K, ZeroRowsAndPaddingStayZero) {
  const std::vector<float> zeros(300, 0.0f);
  EXPECT_EQ(round_trip(DType::Q2K, zeros), zeros);
  auto x = random_values(Distribution::Normal, 300, 9);  // 44 elements of the second super-block, 212 padding
  std::vector<uint8_t> bytes(static_cast<size_t>(dtype_row_bytes(DType::Q2K, 300)));
  quantize_row(DType::Q2K, x.data(), 300, bytes.data());
  std::vector<float> all(512);
  dequantize_row(DType::Q2K, bytes.data(), 512, all.data());
  for (size_t i = 304; i < 512; ++i) EXPECT_EQ(all[i], 0.0f) << i;  // sub-blocks wholly in the padding
}

// Every element lies within its sub-block's range; the search beats fitting the four
// levels to each sub-block's min and max; Q3 (8 levels per 32, 3.5 bits/weight) has
// less error, a plain min/max fit more.
TEST(Q2K, ErrorBetweenQ3AndAMinMaxFit) {
  for (Distribution dist : {Distribution::Normal, Distribution::StudentT3, Distribution::Laplace}) {
    const auto x = random_values(dist, 256 * 64 + 100, 17);
    const auto y = round_trip(DType::Q2K, x);
    std::vector<float> minmax(x.size());
    for (size_t s = 0; s < x.size(); s += 16) {
      const size_t e = std::min(x.size(), s + 16);
      const float lo = std::min(0.0f, *std::min_element(&x[s], &x[0] + e));
      const float hi = *std::max_element(&x[s], &x[0] + e);
      const float step = (hi - lo) / 3.0f;
      for (size_t i = s; i < e; ++i) {
        minmax[i] = step > 0 ? lo + step * std::clamp(std::nearbyint((x[i] - lo) / step), 0.0f, 3.0f) : lo;
        ASSERT_LE(std::fabs(y[i] - x[i]), (hi - lo) * 0.5f + 1e-6f) << i;
      }
    }
    const double q2k = rmse(x, y), q3 = rmse(x, round_trip(DType::Q3, x)), fit = rmse(x, minmax);
    std::printf("%-10s rmse q3 %.6g q2k %.6g min/max fit %.6g\n", testing::distribution_name(dist).c_str(), q3, q2k,
                fit);
    EXPECT_GT(q2k, 1.1 * q3);
    EXPECT_LT(q2k, 0.9 * fit);
  }
}

TEST(Q2K, ImportanceWeightsLowerTheWeightedError) {
  const int64_t n = 256 * 8;
  const auto x = random_values(Distribution::Normal, n, 21);
  std::vector<float> w(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) w[size_t(i)] = (i * 37) % 11 == 0 ? 50.0f : 0.5f;
  const auto plain = round_trip(DType::Q2K, x), weighted = round_trip(DType::Q2K, x, w.data());
  double ep = 0, ew = 0;
  for (int64_t i = 0; i < n; ++i) {
    ep += w[size_t(i)] * std::pow(x[size_t(i)] - plain[size_t(i)], 2);
    ew += w[size_t(i)] * std::pow(x[size_t(i)] - weighted[size_t(i)], 2);
  }
  EXPECT_LT(ew, 0.9 * ep);
}

}  // namespace
}  // namespace qrun
