// f16 / bf16 conversions: exhaustive round trip of every 16-bit pattern, and round to
// nearest even from f32 checked against the hardware-free definition.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "quant/quantize.h"

namespace qrun {
namespace {

TEST(F16, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f)))) << h;
      continue;
    }
    EXPECT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
}

TEST(F16, KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // halfway to the next power rounds to inf
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);  // halfway to zero: ties to even (zero)
  EXPECT_EQ(f32_to_f16(0x1.8p-24f), 0x0002);  // 1.5 ulp: ties to even (2)
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(f16_to_f32(0x3555), 0.333251953125f);
}

TEST(F16, RoundsToNearestEven) {
  // Between two consecutive halves a and b: below the midpoint -> a, above -> b,
  // exactly at the midpoint -> the one with an even mantissa.
  for (uint32_t h = 0x0400; h < 0x7BFF; h += 7) {
    const float a = f16_to_f32(static_cast<uint16_t>(h));
    const float b = f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = 0.5f * (a + b);
    EXPECT_EQ(f32_to_f16(std::nextafter(mid, a)), h);
    EXPECT_EQ(f32_to_f16(std::nextafter(mid, b)), h + 1);
    EXPECT_EQ(f32_to_f16(mid), (h & 1) ? h + 1 : h);
  }
}

TEST(BF16, EveryPatternRoundTripsAndRoundsToNearestEven) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = bf16_to_f32(static_cast<uint16_t>(b));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(f))));
      continue;
    }
    EXPECT_EQ(f32_to_bf16(f), b);
  }
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);  // above tie
}

}  // namespace
}  // namespace qrun
