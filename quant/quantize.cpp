// Scalar quantize_row / dequantize_row for every storage type. Quality matters more
// than speed here: this runs once per tensor in the converter.
#include "quant/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/q2k.h"
#include "quant/scale_search.h"

namespace qrun {

namespace {

void quantize_q8_block(const float* x, int64_t n, const float* w, BlockQ8* out) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  // Codes are computed against the f16-rounded scale that will actually be stored,
  // so the rounding of d does not add a systematic error to every element.
  auto codes_for = [&](uint16_t dh, int8_t* qs) {
    const float d = f16_to_f32(dh);
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int64_t i = 0; i < 32; ++i) {
      const float v = i < n ? x[i] * id : 0.0f;
      // NaN has no code (and casting it is undefined): it is stored as 0. Infinities
      // saturate. The converter refuses non-finite weights before they get here.
      qs[i] = std::isnan(v) ? int8_t{0} : static_cast<int8_t>(std::clamp(std::nearbyint(v), -127.0f, 127.0f));
    }
  };
  out->d = f32_to_f16(std::min(amax / 127.0f, 65504.0f));
  codes_for(out->d, out->qs);
  if (!w || amax == 0.0f || !std::isfinite(amax)) return;
  // With importance weights: also the weighted least-squares scale for these codes.
  auto weighted_error = [&](uint16_t dh, const int8_t* qs) {
    const float d = f16_to_f32(dh);
    float err = 0.0f;
    for (int64_t i = 0; i < n; ++i) err += w[i] * (x[i] - d * qs[i]) * (x[i] - d * qs[i]);
    return err;
  };
  float sxq = 0.0f, sqq = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    sxq += w[i] * x[i] * out->qs[i];
    sqq += w[i] * float(out->qs[i]) * float(out->qs[i]);
  }
  if (sqq <= 0.0f) return;
  BlockQ8 alt;
  alt.d = f32_to_f16(std::min(sxq / sqq, 65504.0f));
  codes_for(alt.d, alt.qs);
  if (weighted_error(alt.d, alt.qs) < weighted_error(out->d, out->qs)) *out = alt;
}

// Copies up to 32 values (NaN -> 0: a NaN would make every candidate scale's error
// NaN and lose the whole block) and their weights; the padded tail weighs nothing.
struct PaddedBlock {
  float x[32] = {}, w[32] = {};
  PaddedBlock(const float* src, const float* importance, int64_t n) {
    std::copy(src, src + n, x);
    std::replace_if(x, x + 32, [](float v) { return std::isnan(v); }, 0.0f);
    for (int64_t i = 0; i < n; ++i) w[i] = importance ? std::max(importance[i], 0.0f) : 1.0f;
  }
};

// Byte j: element j in the low nibble, j+16 in the high one.
void pack_nibbles(const uint8_t* codes, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((codes[j] & 0x0F) | ((codes[j + 16] & 0x0F) << 4));
}

void quantize_block(const PaddedBlock& p, BlockQ4* out) {
  uint8_t codes[32];
  out->d = search_uniform_scale(p.x, p.w, 4, codes);
  pack_nibbles(codes, out->qs);
}

void quantize_block(const PaddedBlock& p, BlockQ4N* out) {
  uint8_t codes[32];
  out->d = search_q4n_scale(p.x, p.w, codes);
  pack_nibbles(codes, out->qs);
}

// MXFP4's exponent e puts the block's largest |x| at 6 * 2^e or below; e - 1 (the largest
// values clamped at 6) is tried too, and the one with less weighted error kept. A block
// that came from MXFP4 is reproduced exactly: e leaves it no error.
void quantize_block(const PaddedBlock& p, BlockMx4* out) {
  constexpr float kMidpoints[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};  // between E2M1's magnitudes
  float amax = 0.0f;
  for (const float v : p.x) amax = std::min(std::max(amax, std::fabs(v)), 1e30f);
  std::fill(out->qs, out->qs + 16, uint8_t{0});
  out->d = 0;
  if (amax == 0.0f) return;
  const int top = static_cast<int>(std::ceil(std::log2(amax / 6.0f)));
  double best_error = -1.0;
  for (const int e : {top, top - 1}) {
    // d = 2^(e - 1) must be an f16 (subnormals included); smaller blocks stay zero.
    const int d_exp = std::min(e - 1, 15);
    if (d_exp < -24) continue;
    const float scale = std::ldexp(1.0f, d_exp + 1);  // an E2M1 value's unit
    uint8_t codes[32];
    double error = 0.0;
    for (int j = 0; j < 32; ++j) {
      const float m = std::fabs(p.x[j]) / scale;
      const int mag = static_cast<int>(std::upper_bound(kMidpoints, kMidpoints + 7, m) - kMidpoints);
      codes[j] = static_cast<uint8_t>(mag | (p.x[j] < 0.0f && mag ? 8 : 0));
      const double diff = static_cast<double>(p.x[j]) - 0.5 * scale * kMx4Levels[codes[j]];
      error += p.w[j] * diff * diff;
    }
    if (best_error >= 0.0 && error >= best_error) continue;
    best_error = error;
    out->d = f32_to_f16(std::ldexp(1.0f, d_exp));
    pack_nibbles(codes, out->qs);
  }
}

void quantize_block(const PaddedBlock& p, BlockQ6* out) {
  uint8_t codes[32];
  out->d = search_uniform_scale(p.x, p.w, 6, codes);
  pack_nibbles(codes, out->qs);
  std::fill(out->qh, out->qh + 8, uint8_t{0});
  for (int j = 0; j < 32; ++j) out->qh[j % 8] |= static_cast<uint8_t>((codes[j] >> 4) << (2 * (j / 8)));
}

void quantize_block(const PaddedBlock& p, BlockQ5* out) {
  uint8_t codes[32];
  out->d = search_uniform_scale(p.x, p.w, 5, codes);
  pack_nibbles(codes, out->qs);
  std::fill(out->qh, out->qh + 4, uint8_t{0});
  for (int j = 0; j < 32; ++j) out->qh[j / 8] |= static_cast<uint8_t>((codes[j] >> 4) << (j % 8));
}

void quantize_block(const PaddedBlock& p, BlockQ3* out) {
  uint8_t codes[32];
  out->d = search_uniform_scale(p.x, p.w, 3, codes);
  std::fill(out->ql, out->ql + 8, uint8_t{0});
  std::fill(out->qh, out->qh + 4, uint8_t{0});
  for (int j = 0; j < 32; ++j) {
    out->ql[j % 8] |= static_cast<uint8_t>((codes[j] & 3) << (2 * (j / 8)));
    out->qh[j / 8] |= static_cast<uint8_t>((codes[j] >> 2) << (j % 8));
  }
}

template <class Block>
void quantize_blocks(const float* x, int64_t n, const float* importance, void* out) {
  auto* o = static_cast<Block*>(out);
  for (int64_t b = 0; b * kQuantBlock < n; ++b) {
    const int64_t len = std::min<int64_t>(kQuantBlock, n - b * kQuantBlock);
    quantize_block(PaddedBlock(x + b * kQuantBlock, importance ? importance + b * kQuantBlock : nullptr, len), o + b);
  }
}

// Split-field rows group their blocks' fields (BlockGroup): each block is quantized on
// its own, then stored in its group.
template <SplitBlock Block>
void quantize_split_row(const float* x, int64_t n, const float* importance, void* out) {
  const int64_t nb = (n + kQuantBlock - 1) / kQuantBlock;
  for (int64_t b = 0; b < nb; ++b) {
    Block blk{};
    quantize_blocks<Block>(x + b * kQuantBlock, std::min<int64_t>(kQuantBlock, n - b * kQuantBlock),
                           importance ? importance + b * kQuantBlock : nullptr, &blk);
    store_split_row_block(static_cast<uint8_t*>(out), nb, b, blk);
  }
}

template <class Block>
void dequantize_blocks(const void* in, int64_t n, float* out) {
  const auto* row = static_cast<const uint8_t*>(in);
  const int64_t nb = (n + kQuantBlock - 1) / kQuantBlock;
  for (int64_t i = 0; i < n; ++i) {
    const auto& b = row_block<Block>(row, nb, i / kQuantBlock);
    out[i] = f16_to_f32(b.d) * static_cast<float>(block_value(b, static_cast<int>(i % kQuantBlock)));
  }
}

}  // namespace

void quantize_row(DType t, const float* x, int64_t n, void* out, const float* importance) {
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
        quantize_q8_block(x + b * kQuantBlock, std::min<int64_t>(kQuantBlock, n - b * kQuantBlock),
                          importance ? importance + b * kQuantBlock : nullptr, o + b);
      return;
    }
    case DType::Q4: return quantize_blocks<BlockQ4>(x, n, importance, out);
    case DType::Q4N: return quantize_blocks<BlockQ4N>(x, n, importance, out);
    case DType::Mx4: return quantize_blocks<BlockMx4>(x, n, importance, out);
    case DType::Q6: return quantize_split_row<BlockQ6>(x, n, importance, out);
    case DType::Q5: return quantize_split_row<BlockQ5>(x, n, importance, out);
    case DType::Q3: return quantize_split_row<BlockQ3>(x, n, importance, out);
    case DType::Q2K: return quantize_q2k(x, n, importance, static_cast<BlockQ2K*>(out));
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
    case DType::Q8: return dequantize_blocks<BlockQ8>(in, n, out);
    case DType::Q4: return dequantize_blocks<BlockQ4>(in, n, out);
    case DType::Q4N: return dequantize_blocks<BlockQ4N>(in, n, out);
    case DType::Mx4: return dequantize_blocks<BlockMx4>(in, n, out);
    case DType::Q6: return dequantize_blocks<BlockQ6>(in, n, out);
    case DType::Q5: return dequantize_blocks<BlockQ5>(in, n, out);
    case DType::Q3: return dequantize_blocks<BlockQ3>(in, n, out);
    case DType::Q2K: return dequantize_q2k(static_cast<const BlockQ2K*>(in), n, out);
  }
}

}  // namespace qrun
