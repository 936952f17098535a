// matvec / matmul / quantize_activations on every compiled target against the scalar
// reference, for every weight type and odd shapes (cols not a multiple of 32 or of the
// vector width, odd row and token counts).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../quant/test_data.h"
#include "quant/quantize.h"
#include "simd/kernels.h"
#include "simd/prefetch.h"
#include "simd/reference.h"
#include "target_loop.h"

namespace qrun {
namespace {

using testing::Distribution;
using testing::for_each_target;
using testing::random_values;

constexpr DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8, DType::Q4,
                            DType::Q4N, DType::Mx4, DType::Q6, DType::Q5, DType::Q3, DType::Q2K};
// 1100: rows of 35 blocks span more than one period of the AVX3_DL chunk layout and end
// in a partial chunk (Q4: 630 bytes, Q8: 1190 bytes).
constexpr int64_t kCols[] = {172, 64, 33, 2048, 1, 31, 100, 1100};
// 13 = 8 + 4 + 1: every matvec tile height (8 for Q4 on AVX2/AVX3, 4, 1).
constexpr int64_t kRows[] = {1, 3, 7, 13, 17};

struct Problem {
  DType type;
  int64_t rows, cols, n;
  std::vector<uint8_t> w;
  std::vector<float> x;        // n x cols
  std::vector<BlockQ8A> xq;    // n x q8a_blocks(cols)
  std::vector<float> abs_dot;  // n x rows: sum |w| |x| over dequantized values, for tolerances

  Problem(DType t, int64_t rows_, int64_t cols_, int64_t n_, Distribution dist, uint32_t seed)
      : type(t), rows(rows_), cols(cols_), n(n_) {
    const int64_t row_bytes = dtype_row_bytes(t, cols);
    w.resize(static_cast<size_t>(rows * row_bytes));
    const auto wf = random_values(dist, rows * cols, seed, 0.02f);
    for (int64_t r = 0; r < rows; ++r) quantize_row(t, &wf[size_t(r * cols)], cols, &w[size_t(r * row_bytes)]);
    x = random_values(dist, n * cols, seed + 1, 1.0f);
    const int64_t nb = q8a_blocks(cols);
    xq.resize(static_cast<size_t>(n * nb));
    for (int64_t i = 0; i < n; ++i) ref::quantize_activations(&x[size_t(i * cols)], cols, &xq[size_t(i * nb)]);
    // Magnitude of the terms summed, from the values each path actually multiplies.
    std::vector<float> wr(static_cast<size_t>(cols)), xr(static_cast<size_t>(nb * 32));
    abs_dot.resize(static_cast<size_t>(n * rows));
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t c = 0; c < nb * 32; ++c) {
        const BlockQ8A& b = xq[size_t(i * nb + c / 32)];
        xr[size_t(c)] = dtype_is_quantized(t) ? b.d * b.qs[c % 32] : (c < cols ? x[size_t(i * cols + c)] : 0.0f);
      }
      for (int64_t r = 0; r < rows; ++r) {
        dequantize_row(t, &w[size_t(r * row_bytes)], cols, wr.data());
        double s = 0;
        for (int64_t c = 0; c < cols; ++c) s += std::fabs(double(wr[size_t(c)]) * xr[size_t(c)]);
        abs_dot[size_t(i * rows + r)] = static_cast<float>(s);
      }
    }
  }
};

// Both paths sum exact int32 block dot products (int8) or the same f32 products; they
// differ only in f32 rounding of the per-block scaling and accumulation order, so
// |simd - ref| <= 1e-5 * sum |w x| (observed errors are ~1e-7 of that).
constexpr float kRelTol = 1e-5f;

TEST(QuantizeActivations, MatchesReferenceExactlyOnEveryTarget) {
  for (int64_t n : {1, 31, 32, 33, 172, 2048}) {
    for (Distribution dist : {Distribution::Normal, Distribution::StudentT3}) {
      const auto x = random_values(dist, n, 11, 3.0f);
      std::vector<BlockQ8A> expect(static_cast<size_t>(q8a_blocks(n)));
      ref::quantize_activations(x.data(), n, expect.data());
      for_each_target([&] {
        std::vector<BlockQ8A> got(expect.size());
        quantize_activations(x.data(), n, got.data());
        for (size_t b = 0; b < got.size(); ++b) {
          ASSERT_EQ(got[b].d, expect[b].d) << "n=" << n << " block " << b;
          ASSERT_EQ(got[b].sum, expect[b].sum) << "n=" << n << " block " << b;
          for (int j = 0; j < 32; ++j) ASSERT_EQ(got[b].qs[j], expect[b].qs[j]) << "n=" << n << " block " << b;
        }
      });
    }
  }
}

TEST(Matvec, MatchesReferenceOnEveryTarget) {
  uint32_t seed = 100;
  for (DType t : kTypes) {
    for (int64_t cols : kCols) {
      for (int64_t rows : kRows) {
        const Problem p(t, rows, cols, 1, (seed & 1) ? Distribution::StudentT3 : Distribution::Normal, seed);
        ++seed;
        std::vector<float> expect(static_cast<size_t>(rows));
        ref::matvec(t, p.w.data(), rows, cols, p.x.data(), p.xq.data(), expect.data());
        for_each_target([&] {
          // Both matvec tile shapes (PrefetchConfig::matvec_rows): four rows side by side, one.
          for (const int matvec_rows : {4, 1}) {
            set_prefetch_config(PrefetchConfig{PrefetchLevel::L2, 24 << 10, 24 << 10, matvec_rows});
            std::vector<float> got(static_cast<size_t>(rows), NAN);
            matvec(t, p.w.data(), rows, cols, p.x.data(), p.xq.data(), got.data());
            for (int64_t r = 0; r < rows; ++r)
              ASSERT_NEAR(got[size_t(r)], expect[size_t(r)], kRelTol * p.abs_dot[size_t(r)] + 1e-30f)
                  << dtype_name(t) << " rows=" << rows << " cols=" << cols << " r=" << r
                  << " matvec_rows=" << matvec_rows;
          }
          set_prefetch_config(PrefetchConfig{});
        });
      }
    }
  }
}

TEST(Matmul, MatchesReferenceOnEveryTarget) {
  uint32_t seed = 500;
  for (DType t : kTypes) {
    for (int64_t cols : {int64_t{172}, int64_t{33}, int64_t{2048}, int64_t{64}, int64_t{1100}}) {
      // 131 rows: more than one of the sgemm path's 64-row panels (float weights, n >= 8).
      for (int64_t rows : {int64_t{1}, int64_t{7}, int64_t{17}, int64_t{131}}) {
        for (int64_t n : {int64_t{2}, int64_t{5}, int64_t{9}, int64_t{40}}) {
          const Problem p(t, rows, cols, n, Distribution::Laplace, seed++);
          const int64_t ldy = rows + 3;  // y rows are strided, the gaps must stay untouched
          std::vector<float> expect(static_cast<size_t>(n * ldy), -7.0f);
          ref::matmul(t, p.w.data(), rows, cols, n, p.x.data(), p.xq.data(), expect.data(), ldy);
          for_each_target([&] {
            std::vector<float> got(static_cast<size_t>(n * ldy), -7.0f);
            matmul(t, p.w.data(), rows, cols, n, p.x.data(), p.xq.data(), got.data(), ldy);
            for (int64_t i = 0; i < n; ++i) {
              for (int64_t r = 0; r < ldy; ++r) {
                const float tol = r < rows ? kRelTol * p.abs_dot[size_t(i * rows + r)] + 1e-30f : 0.0f;
                ASSERT_NEAR(got[size_t(i * ldy + r)], expect[size_t(i * ldy + r)], tol)
                    << dtype_name(t) << " rows=" << rows << " cols=" << cols << " n=" << n << " i=" << i
                    << " r=" << r;
              }
            }
          });
        }
      }
    }
  }
}

TEST(QuantizeActivationsI16, MatchesReferenceExactlyOnEveryTarget) {
  for (int64_t n : {1, 31, 32, 33, 172, 2048}) {
    for (Distribution dist : {Distribution::Normal, Distribution::StudentT3}) {
      const auto x = random_values(dist, n, 12, 3.0f);
      std::vector<BlockQ16A> expect(static_cast<size_t>(q8a_blocks(n)));
      ref::quantize_activations_i16(x.data(), n, expect.data());
      // The reference itself: each element within half a step of x, bytes in range.
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ16A& b = expect[size_t(i / 32)];
        const int32_t q = 128 * b.hi[i % 32] + b.lo[i % 32];
        ASSERT_LE(std::fabs(b.d * float(q) - x[size_t(i)]), 0.501f * b.d) << "n=" << n << " i=" << i;
        ASSERT_GE(b.hi[i % 32], -127);
        ASSERT_GE(b.lo[i % 32], -64);
        ASSERT_LE(b.lo[i % 32], 63);
      }
      for_each_target([&] {
        std::vector<BlockQ16A> got(expect.size());
        quantize_activations_i16(x.data(), n, got.data());
        for (size_t b = 0; b < got.size(); ++b) {
          ASSERT_EQ(got[b].d, expect[b].d) << "n=" << n << " block " << b;
          ASSERT_EQ(got[b].sum, expect[b].sum) << "n=" << n << " block " << b;
          for (int j = 0; j < 32; ++j) {
            ASSERT_EQ(got[b].hi[j], expect[b].hi[j]) << "n=" << n << " block " << b << " j=" << j;
            ASSERT_EQ(got[b].lo[j], expect[b].lo[j]) << "n=" << n << " block " << b << " j=" << j;
          }
        }
      });
    }
  }
}

TEST(MatmulI16, MatchesReferenceOnEveryTarget) {
  uint32_t seed = 900;
  for (int64_t cols : kCols) {
    for (int64_t rows : kRows) {
      for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{5}, int64_t{9}}) {
        const Problem p(DType::Q8, rows, cols, n, (seed & 1) ? Distribution::StudentT3 : Distribution::Laplace, seed);
        ++seed;
        const int64_t nb = q8a_blocks(cols), ldy = rows + 3;
        std::vector<BlockQ16A> xq(static_cast<size_t>(n * nb));
        for (int64_t i = 0; i < n; ++i) ref::quantize_activations_i16(&p.x[size_t(i * cols)], cols, &xq[size_t(i * nb)]);
        std::vector<float> expect(static_cast<size_t>(n * ldy), -7.0f);
        ref::matmul_i16(p.w.data(), rows, cols, n, xq.data(), expect.data(), ldy);
        for_each_target([&] {
          std::vector<float> got(static_cast<size_t>(n * ldy), -7.0f);
          matmul_i16(p.w.data(), rows, cols, n, xq.data(), got.data(), ldy);
          for (int64_t i = 0; i < n; ++i)
            for (int64_t r = 0; r < ldy; ++r) {
              // abs_dot comes from the int8 activations: within 1% of the 16-bit ones'.
              const float tol = r < rows ? 1.01f * kRelTol * p.abs_dot[size_t(i * rows + r)] + 1e-30f : 0.0f;
              ASSERT_NEAR(got[size_t(i * ldy + r)], expect[size_t(i * ldy + r)], tol)
                  << "rows=" << rows << " cols=" << cols << " n=" << n << " i=" << i << " r=" << r;
            }
        });
      }
    }
  }
}

TEST(MatvecI16, SixteenBitActivationsRemoveMostOfTheInt8Error) {
  // Against the exact dot product of the dequantized Q8 weights with x, the only error
  // left is the activations' rounding: 128 times finer steps than int8's.
  const int64_t rows = 64, cols = 2048, nb = q8a_blocks(cols);
  const auto wf = random_values(Distribution::Normal, rows * cols, 17, 0.02f);
  const auto x = random_values(Distribution::StudentT3, cols, 18, 1.0f);
  const int64_t row_bytes = dtype_row_bytes(DType::Q8, cols);
  std::vector<uint8_t> w(static_cast<size_t>(rows * row_bytes));
  for (int64_t r = 0; r < rows; ++r) quantize_row(DType::Q8, &wf[size_t(r * cols)], cols, &w[size_t(r * row_bytes)]);
  std::vector<BlockQ8A> xq8(static_cast<size_t>(nb));
  std::vector<BlockQ16A> xq16(static_cast<size_t>(nb));
  quantize_activations(x.data(), cols, xq8.data());
  quantize_activations_i16(x.data(), cols, xq16.data());
  std::vector<float> y8(static_cast<size_t>(rows)), y16(static_cast<size_t>(rows)), wr(static_cast<size_t>(cols));
  matvec(DType::Q8, w.data(), rows, cols, x.data(), xq8.data(), y8.data());
  matmul_i16(w.data(), rows, cols, 1, xq16.data(), y16.data(), rows);
  double err8 = 0, err16 = 0;
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(DType::Q8, &w[size_t(r * row_bytes)], cols, wr.data());
    const double exact = ref::dot_f32(wr.data(), x.data(), cols);
    err8 += (y8[size_t(r)] - exact) * (y8[size_t(r)] - exact);
    err16 += (y16[size_t(r)] - exact) * (y16[size_t(r)] - exact);
  }
  EXPECT_GT(err8, 0.0);
  EXPECT_LT(std::sqrt(err16), std::sqrt(err8) / 50) << "int8 RMS " << std::sqrt(err8 / rows);
}

TEST(Matvec, Int8PathTracksFloatDotProduct) {
  // End to end: quantized weights x quantized activations stay close to the f32 dot
  // product of the original values (bounds from the formats' step sizes, loose).
  const int64_t rows = 64, cols = 2048;
  const auto wf = random_values(Distribution::Normal, rows * cols, 7, 0.02f);
  const auto x = random_values(Distribution::Normal, cols, 8, 1.0f);
  std::vector<BlockQ8A> xq(static_cast<size_t>(q8a_blocks(cols)));
  quantize_activations(x.data(), cols, xq.data());
  for (DType t : {DType::Q8, DType::Q6, DType::Q5, DType::Q4N, DType::Q4, DType::Q3, DType::Q2K}) {
    std::vector<uint8_t> w(static_cast<size_t>(rows * dtype_row_bytes(t, cols)));
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(t, &wf[size_t(r * cols)], cols, &w[size_t(r * dtype_row_bytes(t, cols))]);
    std::vector<float> y(static_cast<size_t>(rows));
    matvec(t, w.data(), rows, cols, x.data(), xq.data(), y.data());
    double err = 0, norm = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double exact = ref::dot_f32(&wf[size_t(r * cols)], x.data(), cols);
      err += (y[size_t(r)] - exact) * (y[size_t(r)] - exact);
      norm += exact * exact;
    }
    // Relative RMS error: Q8 ~0.5%, Q4 ~8% on gaussian data; each bit less doubles it
    // (Q3 0.16), but Q2K's ranges per 16 weights keep it at 0.22.
    const double bound = t == DType::Q8   ? 0.02
                         : t == DType::Q6 ? 0.04
                         : t == DType::Q5 ? 0.08
                         : t == DType::Q3 || t == DType::Q2K ? 0.3
                                                             : 0.15;
    EXPECT_LT(std::sqrt(err / norm), bound) << dtype_name(t);
  }
}

}  // namespace
}  // namespace qrun
