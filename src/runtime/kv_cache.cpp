#include "qrun/kv_cache.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "qrun/error.h"
#include "quant/block_formats.h"
#include "quant/quantize.h"
#include "simd/kernels.h"

namespace qrun {

const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F16: return "f16";
    case KvType::Q8_0: return "q8_0";
    case KvType::Q4_0: return "q4_0";
    case KvType::IQ4_NL: return "iq4_nl";
  }
  return "?";
}

std::string describe_kv_types(KvType keys, KvType values) {
  if (keys == values) return kv_type_name(keys);
  return std::string("keys ") + kv_type_name(keys) + ", values " + kv_type_name(values);
}

KvType parse_kv_type(const std::string& name) {
  if (name == "f16") return KvType::F16;
  if (name == "q8_0") return KvType::Q8_0;
  if (name == "q4_0") return KvType::Q4_0;
  if (name == "iq4_nl") return KvType::IQ4_NL;
  throw Error("KV cache type '" + name + "': must be f16, q8_0, q4_0 or iq4_nl");
}

KvCache::KvCache(const std::vector<int>& ring, int capacity, int kv_dim, int head_dim, KvType key_type,
                 KvType value_type)
    : capacity_(capacity), kv_dim_(kv_dim), head_dim_(head_dim), type_{key_type, value_type}, ring_(ring) {
  if (head_dim <= 0 || kv_dim % head_dim != 0)
    throw Error("KV cache: kv_dim " + std::to_string(kv_dim) + " is not whole heads of " + std::to_string(head_dim));
  for (const KvType t : {key_type, value_type})
    if (kv_type_is_4bit(t) && kv_group(head_dim) < 2)
      throw Error(std::string("KV cache: ") + kv_type_name(t) + " needs an even head_dim (this model's is " +
                  std::to_string(head_dim) + ")");
  for (int kv = 0; kv < 2; ++kv) row_bytes_[kv] = kv_row_bytes(type_[kv], kv_dim, head_dim);
  size_t total = 0;
  for (const int r : ring_) {
    rows_.push_back(r ? 2 * static_cast<size_t>(r) : static_cast<size_t>(capacity));
    first_.push_back(total);
    total += rows_.back() * static_cast<size_t>(row_bytes_[0] + row_bytes_[1]);
  }
  data_.resize(total);
}

namespace {

// q8_0 as llama.cpp stores it: per group an f16 scale d = max|x| / 127, then the values
// rounded to x / d (d as stored, so each value is the nearest step of the scale read back).
void encode_q8_0(const float* x, int n, int group, uint8_t* out) {
  for (int b = 0; b < n / group; ++b, x += group, out += group + 2) {
    float amax = 0.0f;
    for (int i = 0; i < group; ++i) amax = std::max(amax, std::abs(x[i]));
    const uint16_t d16 = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(d16), id = d > 0.0f ? 1.0f / d : 0.0f;
    std::memcpy(out, &d16, 2);
    for (int i = 0; i < group; ++i)
      out[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * id), -127.0f, 127.0f)));
  }
}

void decode_q8_0(const uint8_t* row, int n, int group, float* out) {
  for (int b = 0; b < n / group; ++b, row += group + 2, out += group) {
    uint16_t d16;
    std::memcpy(&d16, row, 2);
    const float d = f16_to_f32(d16);
    for (int i = 0; i < group; ++i) out[i] = d * static_cast<float>(static_cast<int8_t>(row[2 + i]));
  }
}

// The value of largest magnitude among n, with its sign (the first of equals).
float largest_magnitude(const float* x, int n) {
  float m = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::abs(x[i]) > std::abs(m)) m = x[i];
  return m;
}

// q4_0 as llama.cpp stores it: d = m / -8 for the value m of largest magnitude, so m
// takes code 0 (within f16's rounding of d) and codes 0..15 are d * (code - 8); each value
// rounds to the nearest step of d as stored. Value i of a group sits in byte i % (g / 2), in the low
// half for the first g / 2 values and the high half for the rest.
void encode_q4_0(const float* x, int n, int group, uint8_t* out) {
  const int half = group / 2;
  for (int b = 0; b < n / group; ++b, x += group, out += 2 + half) {
    const uint16_t d16 = f32_to_f16(largest_magnitude(x, group) / -8.0f);
    const float d = f16_to_f32(d16), id = d != 0.0f ? 1.0f / d : 0.0f;
    std::memcpy(out, &d16, 2);
    auto code = [&](float v) { return static_cast<uint8_t>(std::clamp(std::nearbyint(v * id) + 8.0f, 0.0f, 15.0f)); };
    for (int i = 0; i < half; ++i) out[2 + i] = static_cast<uint8_t>(code(x[i]) | code(x[i + half]) << 4);
  }
}

// Rows of 4-bit codes (q4_0, iq4_nl): d times the value each code stands for.
template <class CodeValue>
void decode_4bit(const uint8_t* row, int n, int group, float* out, CodeValue value) {
  const int half = group / 2;
  for (int b = 0; b < n / group; ++b, row += 2 + half, out += group) {
    uint16_t d16;
    std::memcpy(&d16, row, 2);
    const float d = f16_to_f32(d16);
    for (int i = 0; i < half; ++i) {
      out[i] = d * static_cast<float>(value(row[2 + i] & 15));
      out[i + half] = d * static_cast<float>(value(row[2 + i] >> 4));
    }
  }
}

void decode_q4_0(const uint8_t* row, int n, int group, float* out) {
  decode_4bit(row, n, group, out, [](int code) { return code - 8; });
}

// iq4_nl as llama.cpp stores it: q4_0's layout, each code indexing the non-uniform levels
// kQ4NLevels (times d). The value m of largest magnitude sets the first scales tried, m /
// (-127 + t) for t in -4..4 (so m lands on or near the level -127); each scale's codes
// are every value's nearest level, then d is refit to them by least squares and the codes
// taken again for d as stored; the scale of least squared error is kept.
constexpr int kIq4Thresholds = 15;
constexpr auto kIq4Midpoints = [] {
  std::array<float, kIq4Thresholds> mid{};
  for (int k = 0; k < kIq4Thresholds; ++k) mid[size_t(k)] = 0.5f * float(kQ4NLevels[k] + kQ4NLevels[k + 1]);
  return mid;
}();

// The code of the level nearest y (levels ascending: count the midpoints below y). A
// count of all fifteen, not a binary search: its four data-dependent branches
// mispredicted on most values, and the encoder runs for every token's keys and values.
int nearest_iq4_code(float y) {
  int code = 0;
  for (const float mid : kIq4Midpoints) code += y > mid;
  return code;
}

void encode_iq4_nl(const float* x, int n, int group, uint8_t* out) {
  const int half = group / 2;
  uint8_t codes[32], best_codes[32];
  for (int b = 0; b < n / group; ++b, x += group, out += 2 + half) {
    const float m = largest_magnitude(x, group);
    uint16_t best_d16 = 0;
    std::fill_n(best_codes, group, uint8_t{8});
    float best_err = std::numeric_limits<float>::infinity();
    const auto take_codes = [&](uint16_t d16) {  // nearest levels of d as stored; their squared error
      const float d = f16_to_f32(d16), id = d != 0.0f ? 1.0f / d : 0.0f;
      float err = 0.0f;
      for (int i = 0; i < group; ++i) {
        codes[i] = static_cast<uint8_t>(nearest_iq4_code(x[i] * id));
        const float e = x[i] - d * float(kQ4NLevels[codes[i]]);
        err += e * e;
      }
      if (err < best_err) {
        best_err = err;
        best_d16 = d16;
        std::copy_n(codes, group, best_codes);
      }
    };
    for (int t = -4; m != 0.0f && t <= 4; ++t) {
      take_codes(f32_to_f16(m / float(kQ4NLevels[0] + t)));
      double xl = 0.0, ll = 0.0;
      for (int i = 0; i < group; ++i) {
        const double level = kQ4NLevels[codes[i]];
        xl += double(x[i]) * level;
        ll += level * level;
      }
      if (ll > 0.0 && xl != 0.0) take_codes(f32_to_f16(float(xl / ll)));
    }
    std::memcpy(out, &best_d16, 2);
    for (int i = 0; i < half; ++i) out[2 + i] = static_cast<uint8_t>(best_codes[i] | best_codes[i + half] << 4);
  }
}

void decode_iq4_nl(const uint8_t* row, int n, int group, float* out) {
  decode_4bit(row, n, group, out, [](int code) { return int{kQ4NLevels[code]}; });
}

void encode(KvType t, const float* x, int n, int head_dim, uint8_t* out) {
  switch (t) {
    case KvType::F16: return f32_to_f16_row(x, reinterpret_cast<uint16_t*>(out), n);
    case KvType::Q8_0: return encode_q8_0(x, n, kv_group(head_dim), out);
    case KvType::Q4_0: return encode_q4_0(x, n, kv_group(head_dim), out);
    case KvType::IQ4_NL: return encode_iq4_nl(x, n, kv_group(head_dim), out);
  }
}

void decode(KvType t, const uint8_t* row, int n, int head_dim, float* out) {
  switch (t) {
    case KvType::F16: return widen_row_to_f32(DType::F16, row, n, out);
    case KvType::Q8_0: return decode_q8_0(row, n, kv_group(head_dim), out);
    case KvType::Q4_0: return decode_q4_0(row, n, kv_group(head_dim), out);
    case KvType::IQ4_NL: return decode_iq4_nl(row, n, kv_group(head_dim), out);
  }
}

}  // namespace

void KvCache::encode_key(const float* k, uint8_t* out) const { encode(type_[0], k, kv_dim_, head_dim_, out); }

void KvCache::decode_key(const uint8_t* row, float* out) const { decode(type_[0], row, kv_dim_, head_dim_, out); }
void KvCache::decode_value(const uint8_t* row, float* out) const { decode(type_[1], row, kv_dim_, head_dim_, out); }

void KvCache::store(int layer, int pos, const float* k, const float* v) {
  encode(type_[0], k, kv_dim_, head_dim_, key(layer, pos));
  encode(type_[1], v, kv_dim_, head_dim_, value(layer, pos));
  mirror(layer, pos);
}

void KvCache::mirror(int layer, int pos) {
  if (!ring(layer)) return;
  const size_t r = static_cast<size_t>(ring(layer));
  std::copy_n(key(layer, pos), key_bytes(), key(layer, pos) + r * static_cast<size_t>(key_bytes()));
  std::copy_n(value(layer, pos), value_bytes(), value(layer, pos) + r * static_cast<size_t>(value_bytes()));
}

}  // namespace qrun
