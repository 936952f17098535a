// Scalar quantize_row / dequantize_row for every storage type. Quality matters more
// than speed here: this runs once per tensor in the converter.
#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/q4_scale_search.h"

namespace qrun {

namespace {

void quantize_q8_block(const float* x, int64_t n, BlockQ8* out) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  // Codes are computed against the f16-rounded scale that will actually be stored,
  // so the rounding of d does not add a systematic error to every element.
  const uint16_t dh = f32_to_f16(std::min(amax / 127.0f, 65504.0f));
  const float d = f16_to_f32(dh);
  const float id = d > 0.0f ? 1.0f / d : 0.0f;
  out->d = dh;
  for (int64_t i = 0; i < 32; ++i) {
    const float v = i < n ? x[i] * id : 0.0f;
    // NaN has no code (and casting it is undefined): it is stored as 0. Infinities
    // saturate. The converter refuses non-finite weights before they get here.
    out->qs[i] = std::isnan(v) ? int8_t{0} : static_cast<int8_t>(std::clamp(std::nearbyint(v), -127.0f, 127.0f));
  }
}

void quantize_q4_block(const float* x, int64_t n, BlockQ4* out) {
  float xb[32] = {};
  std::copy(x, x + n, xb);
  // A NaN would make every candidate scale's error NaN and lose the whole block.
  std::replace_if(xb, xb + 32, [](float v) { return std::isnan(v); }, 0.0f);
  uint8_t codes[32];
  out->d = q4_search_scale(xb, codes);
  for (int j = 0; j < 16; ++j) out->qs[j] = static_cast<uint8_t>(codes[j] | (codes[j + 16] << 4));
}

}  // namespace

void quantize_row(DType t, const float* x, int64_t n, void* out) {
  switch (t) {
    case DType::F32:
      std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      auto* o = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) o[i] = f32_to_f16(x[i]);
      return;
    }
    case DType::BF16: {
      auto* o = static_cast<uint16_t*>(out);
      for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(x[i]);
      return;
    }
    case DType::Q8: {
      auto* o = static_cast<BlockQ8*>(out);
      for (int64_t b = 0; b * kQuantBlock < n; ++b)
        quantize_q8_block(x + b * kQuantBlock, std::min<int64_t>(kQuantBlock, n - b * kQuantBlock), o + b);
      return;
    }
    case DType::Q4: {
      auto* o = static_cast<BlockQ4*>(out);
      for (int64_t b = 0; b * kQuantBlock < n; ++b)
        quantize_q4_block(x + b * kQuantBlock, std::min<int64_t>(kQuantBlock, n - b * kQuantBlock), o + b);
      return;
    }
  }
}

void dequantize_row(DType t, const void* in, int64_t n, float* out) {
  switch (t) {
    case DType::F32:
      std::memcpy(out, in, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      const auto* p = static_cast<const uint16_t*>(in);
      for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(p[i]);
      return;
    }
    case DType::BF16: {
      const auto* p = static_cast<const uint16_t*>(in);
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(p[i]);
      return;
    }
    case DType::Q8: {
      const auto* blocks = static_cast<const BlockQ8*>(in);
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ8& b = blocks[i / kQuantBlock];
        out[i] = f16_to_f32(b.d) * static_cast<float>(b.qs[i % kQuantBlock]);
      }
      return;
    }
    case DType::Q4: {
      const auto* blocks = static_cast<const BlockQ4*>(in);
      for (int64_t i = 0; i < n; ++i) {
        const BlockQ4& b = blocks[i / kQuantBlock];
        const int j = static_cast<int>(i % kQuantBlock);
        const int code = j < 16 ? (b.qs[j] & 0x0F) : (b.qs[j - 16] >> 4);
        out[i] = f16_to_f32(b.d) * static_cast<float>(code - 8);
      }
      return;
    }
  }
}

}  // namespace qrun
