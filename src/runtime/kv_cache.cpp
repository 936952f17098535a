#include "qrun/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "qrun/error.h"
#include "quant/quantize.h"
#include "simd/kernels.h"

namespace qrun {

const char* kv_type_name(KvType t) { return t == KvType::Q8_0 ? "q8_0" : "f16"; }

std::string describe_kv_types(KvType keys, KvType values) {
  if (keys == values) return kv_type_name(keys);
  return std::string("keys ") + kv_type_name(keys) + ", values " + kv_type_name(values);
}

KvType parse_kv_type(const std::string& name) {
  if (name == "f16") return KvType::F16;
  if (name == "q8_0") return KvType::Q8_0;
  throw Error("KV cache type '" + name + "': must be f16 or q8_0");
}

KvCache::KvCache(const std::vector<int>& ring, int capacity, int kv_dim, int head_dim, KvType key_type,
                 KvType value_type)
    : capacity_(capacity), kv_dim_(kv_dim), head_dim_(head_dim), type_{key_type, value_type}, ring_(ring) {
  if (head_dim <= 0 || kv_dim % head_dim != 0)
    throw Error("KV cache: kv_dim " + std::to_string(kv_dim) + " is not whole heads of " + std::to_string(head_dim));
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

void encode(KvType t, const float* x, int n, int head_dim, uint8_t* out) {
  if (t == KvType::F16) f32_to_f16_row(x, reinterpret_cast<uint16_t*>(out), n);
  else encode_q8_0(x, n, kv_group(head_dim), out);
}

void decode(KvType t, const uint8_t* row, int n, int head_dim, float* out) {
  if (t == KvType::F16) widen_row_to_f32(DType::F16, row, n, out);
  else decode_q8_0(row, n, kv_group(head_dim), out);
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
