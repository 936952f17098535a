// Round to nearest, ties to even, for |y| <= 2^22: what nearbyint does in the default
// rounding mode, without the libm call nearbyint is on x86-64 without SSE4.1 (the
// converter's searches round every candidate level of every weight).
#pragma once

namespace qrun {

inline float round_even(float y) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (y + kMagic) - kMagic;
}

}  // namespace qrun
