// Block layouts follow ggml (ggml-common.h); the arithmetic is ggml's reference
// dequantization, in float, element for element, so values match llama.cpp's.
#include "convert/gguf_quants.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "convert/gguf_reader.h"
#include "quant/quantize.h"

namespace qrun {

namespace {

uint16_t u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float h(const uint8_t* p) { return f16_to_f32(u16(p)); }

// Q4_0: d, 16 bytes; byte j = element j (low nibble) and j+16 (high nibble); x = d*(q-8).
void q4_0(const uint8_t* b, float* y) {
  const float d = h(b);
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((b[2 + j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((b[2 + j] >> 4) - 8) * d;
  }
}
// Q4_1: d, m, 16 bytes; x = q*d + m.
void q4_1(const uint8_t* b, float* y) {
  const float d = h(b), m = h(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(b[4 + j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(b[4 + j] >> 4) * d + m;
  }
}
// Q5_0: d, qh (u32: bit j is the 5th bit of element j), 16 bytes; x = d*(q-16).
void q5_0(const uint8_t* b, float* y) {
  const float d = h(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const uint8_t xh0 = static_cast<uint8_t>(((qh >> j) << 4) & 0x10);
    const uint8_t xh1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>(((qs[j] & 0x0F) | xh0) - 16) * d;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | xh1) - 16) * d;
  }
}
// IQ4_NL: d, 16 bytes of 4-bit indices (as Q4_0) into a code book; x = d*level. qrun's
// Q4N is the same block (quant/block_formats.h).
void iq4_nl(const uint8_t* b, float* y) {
  const float d = h(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kQ4NLevels[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kQ4NLevels[qs[j] >> 4]);
  }
}
// MXFP4 (gpt-oss's experts): an E8M0 exponent e, 16 bytes of E2M1 codes (as Q4_0);
// x = level * 2^(e - 128) with the levels doubled (qrun's kMx4Levels, ggml's too).
void mxfp4(const uint8_t* b, float* y) {
  const float d = std::ldexp(1.0f, static_cast<int>(b[0]) - 128);
  const uint8_t* qs = b + 1;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(kMx4Levels[qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kMx4Levels[qs[j] >> 4]);
  }
}
// Q5_1: d, m, qh, 16 bytes; x = q*d + m.
void q5_1(const uint8_t* b, float* y) {
  const float d = h(b), m = h(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const uint8_t xh0 = static_cast<uint8_t>(((qh >> j) << 4) & 0x10);
    const uint8_t xh1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>((qs[j] & 0x0F) | xh0) * d + m;
    y[j + 16] = static_cast<float>((qs[j] >> 4) | xh1) * d + m;
  }
}
// Q8_0: d, 32 x int8; x = q*d.
void q8_0(const uint8_t* b, float* y) {
  const float d = h(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

// K-quants: 256-element super-blocks.
void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
// Q2_K: scales[16] (4-bit scale | 4-bit min), qs[64], d, dmin.
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  const float d = h(b + 80), dmin = h(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc = scales[is++];
      float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>(static_cast<int8_t>((q[l] >> shift) & 3)) - ml;
      sc = scales[is++];
      dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>(static_cast<int8_t>((q[l + 16] >> shift) & 3)) - ml;
      shift += 2;
    }
    q += 32;
  }
}
// Q3_K: hmask[32] (high bits), qs[64] (low pairs), scales[12] (16 six-bit scales), d.
// Element 128h + 32j + l: low pair in bits 2j of qs[32h + l], high bit (set: +0, clear:
// -4) in bit 4h + j of hmask[l]; sub-block s = element / 16 has scale low nibble from
// byte s (s < 8) or the high nibble of byte s - 8, top two bits from byte 8 + s % 4
// at bit 2 (s / 4); x = d * (scale - 32) * (code - 4 * !high).
void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = h(b + 108);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, j = e % 128 / 32, l = e % 32, s = e / 16;
    const int low4 = s < 8 ? sc[s] & 0xF : sc[s - 8] >> 4;
    const int scale = (low4 | ((sc[8 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32;
    const int pair = (qs[32 * half + l] >> (2 * j)) & 3;
    const int high = (hmask[l] >> (4 * half + j)) & 1;
    y[e] = d * static_cast<float>(scale) * static_cast<float>(pair - (high ? 0 : 4));
  }
}
// Q4_K: d, dmin, scales[12] (6-bit scales and mins), qs[128].
void q4_k(const uint8_t* b, float* y) {
  const float d = h(b), dmin = h(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  for (int j = 0; j < 256; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is + 0, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}
// Q5_K: d, dmin, scales[12], qh[32], qs[128].
void q5_k(const uint8_t* b, float* y) {
  const float d = h(b), dmin = h(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < 256; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is + 0, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}
// Q6_K: ql[128], qh[64], scales[16] (int8), d.
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = h(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

bool gguf_can_dequantize(uint32_t t) {
  switch (static_cast<GgmlType>(t)) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::F64:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K: case GgmlType::IQ4_NL:
    case GgmlType::MXFP4:
      return true;
    default:
      return false;
  }
}

void gguf_dequantize_row(uint32_t t, const uint8_t* in, int64_t n, float* out) {
  auto blocks = [&](int64_t be, int64_t bb, void (*f)(const uint8_t*, float*)) {
    for (int64_t i = 0; i < n / be; ++i) f(in + i * bb, out + i * be);
  };
  switch (static_cast<GgmlType>(t)) {
    case GgmlType::F32: std::memcpy(out, in, static_cast<size_t>(n) * 4); return;
    case GgmlType::F16: for (int64_t i = 0; i < n; ++i) out[i] = f16_to_f32(u16(in + 2 * i)); return;
    case GgmlType::BF16: for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(u16(in + 2 * i)); return;
    case GgmlType::F64:
      for (int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, in + 8 * i, 8);
        // Casting a double outside float's range is undefined: saturate to infinity.
        out[i] = v > 3.4028234663852886e38 ? HUGE_VALF : v < -3.4028234663852886e38 ? -HUGE_VALF : static_cast<float>(v);
      }
      return;
    case GgmlType::Q4_0: return blocks(32, 18, q4_0);
    case GgmlType::Q4_1: return blocks(32, 20, q4_1);
    case GgmlType::Q5_0: return blocks(32, 22, q5_0);
    case GgmlType::Q5_1: return blocks(32, 24, q5_1);
    case GgmlType::Q8_0: return blocks(32, 34, q8_0);
    case GgmlType::Q2_K: return blocks(256, 84, q2_k);
    case GgmlType::Q3_K: return blocks(256, 110, q3_k);
    case GgmlType::Q4_K: return blocks(256, 144, q4_k);
    case GgmlType::Q5_K: return blocks(256, 176, q5_k);
    case GgmlType::Q6_K: return blocks(256, 210, q6_k);
    case GgmlType::IQ4_NL: return blocks(32, 18, iq4_nl);
    case GgmlType::MXFP4: return blocks(32, 17, mxfp4);
    default: throw std::logic_error("gguf_dequantize_row: type " + ggml_type_name(t) + " not handled");
  }
}

}  // namespace qrun
