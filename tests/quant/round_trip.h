// Shared by the quant tests: a row through quantize_row and back, and the RMS error.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "quant/quantize.h"

namespace qrun::testing {

// x quantized to t (with optional importance weights) and dequantized; the output buffer
// starts as 0xAB so bytes the quantizer forgets show.
inline std::vector<float> round_trip(DType t, const std::vector<float>& x, const float* importance = nullptr) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> bytes(static_cast<size_t>(dtype_row_bytes(t, n)), 0xAB);
  quantize_row(t, x.data(), n, bytes.data(), importance);
  std::vector<float> y(x.size());
  dequantize_row(t, bytes.data(), n, y.data());
  return y;
}

inline double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

}  // namespace qrun::testing
