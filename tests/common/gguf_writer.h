// Writes GGUF files (v3) for tests: metadata of every value type, tensors of any ggml
// type from raw bytes, and helpers that quantize rows as llama.cpp's reference code
// does (Q8_0, Q4_0). make_gguf.sh needs python3-torch, which the build does not
// install, so test GGUFs are written here; layout as in llama.cpp's gguf.cpp writer.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "quant/quantize.h"

namespace qrun::test {

enum : uint32_t {
  kGgufU8 = 0, kGgufI8 = 1, kGgufU16 = 2, kGgufI16 = 3, kGgufU32 = 4, kGgufI32 = 5, kGgufF32 = 6,
  kGgufBool = 7, kGgufString = 8, kGgufArray = 9, kGgufU64 = 10, kGgufI64 = 11, kGgufF64 = 12,
};
enum : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ5_0 = 6, kGgmlQ8_0 = 8, kGgmlQ4_K = 12, kGgmlQ6_K = 14, kGgmlBF16 = 30, kGgmlMxfp4 = 39 };

class GgufWriter {
 public:
  template <class T>
  static void put(std::vector<uint8_t>& b, T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
  }
  static void put_str(std::vector<uint8_t>& b, const std::string& s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }

  // Metadata.
  void u32(const std::string& k, uint32_t v) { key(k, kGgufU32), put(kv_, v); }
  void i32(const std::string& k, int32_t v) { key(k, kGgufI32), put(kv_, v); }
  void u64(const std::string& k, uint64_t v) { key(k, kGgufU64), put(kv_, v); }
  void f32(const std::string& k, float v) { key(k, kGgufF32), put(kv_, v); }
  void boolean(const std::string& k, bool v) { key(k, kGgufBool), put<uint8_t>(kv_, v ? 1 : 0); }
  void str(const std::string& k, const std::string& v) { key(k, kGgufString), put_str(kv_, v); }
  void strings(const std::string& k, const std::vector<std::string>& v) {
    key(k, kGgufArray), put<uint32_t>(kv_, kGgufString), put<uint64_t>(kv_, v.size());
    for (const auto& s : v) put_str(kv_, s);
  }
  void f32s(const std::string& k, const std::vector<float>& v) {
    key(k, kGgufArray), put<uint32_t>(kv_, kGgufF32), put<uint64_t>(kv_, v.size());
    for (float f : v) put(kv_, f);
  }
  void i32s(const std::string& k, const std::vector<int32_t>& v) {
    key(k, kGgufArray), put<uint32_t>(kv_, kGgufI32), put<uint64_t>(kv_, v.size());
    for (int32_t x : v) put(kv_, x);
  }
  // A key with raw value bytes after the type (for hostile inputs).
  void raw(const std::string& k, uint32_t type, const std::vector<uint8_t>& value) {
    key(k, type);
    kv_.insert(kv_.end(), value.begin(), value.end());
  }

  // Tensors: ne[0] first (elements per row); data must be the exact byte size.
  void tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, std::vector<uint8_t> data) {
    tensors_.push_back({name, std::move(ne), type, std::move(data), UINT64_MAX});
  }
  // Forces a tensor's recorded offset (relative to the data section) for hostile inputs.
  void set_offset(size_t i, uint64_t off) { tensors_[i].forced_offset = off; }

  std::vector<uint8_t> bytes(uint32_t alignment = 32) const {
    std::vector<uint8_t> b;
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    put<uint32_t>(b, 3);
    put<uint64_t>(b, tensors_.size());
    put<uint64_t>(b, n_kv_);
    b.insert(b.end(), kv_.begin(), kv_.end());
    uint64_t off = 0;
    std::vector<uint64_t> offs;
    for (const auto& t : tensors_) {
      put_str(b, t.name);
      put<uint32_t>(b, static_cast<uint32_t>(t.ne.size()));
      for (int64_t n : t.ne) put<uint64_t>(b, static_cast<uint64_t>(n));
      put<uint32_t>(b, t.type);
      const uint64_t o = t.forced_offset != UINT64_MAX ? t.forced_offset : off;
      put<uint64_t>(b, o);
      offs.push_back(o);
      off += (t.data.size() + alignment - 1) / alignment * alignment;
    }
    b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
    const size_t data_at = b.size();
    for (size_t i = 0; i < tensors_.size(); ++i) {
      if (tensors_[i].forced_offset != UINT64_MAX) continue;
      b.resize(std::max(b.size(), data_at + offs[i] + tensors_[i].data.size()), 0);
      if (!tensors_[i].data.empty())  // memcpy from an empty vector's null data() is undefined
        std::memcpy(b.data() + data_at + offs[i], tensors_[i].data.data(), tensors_[i].data.size());
    }
    b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
    return b;
  }

 private:
  void key(const std::string& k, uint32_t type) {
    put_str(kv_, k);
    put<uint32_t>(kv_, type);
    ++n_kv_;
  }
  struct T {
    std::string name;
    std::vector<int64_t> ne;
    uint32_t type;
    std::vector<uint8_t> data;
    uint64_t forced_offset;
  };
  std::vector<uint8_t> kv_;
  uint64_t n_kv_ = 0;
  std::vector<T> tensors_;
};

// llama.cpp's quantize_row_q8_0_ref: d = amax/127, q = round(x/d).
inline void ggml_quantize_q8_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32, out += 34) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(out, &dh, 2);
    for (int j = 0; j < 32; ++j) out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
  }
}

// The value of largest magnitude among a block's 32 (the first such), which llama.cpp's
// Q4_0 and Q5_0 reference quantizers divide by their most negative code.
inline float ggml_block_max(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j)
    if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), max = x[j];
  return max;
}

// llama.cpp's quantize_row_q4_0_ref: d = max/-8 (max the value of largest magnitude),
// q = min(15, (int8)(x/d + 8.5)); byte j = q[j] | q[j+16] << 4.
inline void ggml_quantize_q4_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32, out += 18) {
    const float d = ggml_block_max(x) / -8.0f, id = d ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(out, &dh, 2);
    for (int j = 0; j < 16; ++j) {
      const uint8_t q0 = static_cast<uint8_t>(std::min<int8_t>(15, static_cast<int8_t>(x[j] * id + 8.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min<int8_t>(15, static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      out[2 + j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

// llama.cpp's quantize_row_q5_0_ref: d = max/-16, q = min(31, (int8)(x/d + 16.5)); the
// block is d, then qh (bit j: the 5th bit of q[j]), then byte j = low nibbles of q[j], q[j+16].
inline void ggml_quantize_q5_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32, out += 22) {
    const float d = ggml_block_max(x) / -16.0f, id = d ? 1.0f / d : 0.0f;
    const uint16_t dh = f32_to_f16(d);
    std::memcpy(out, &dh, 2);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const uint8_t q0 = static_cast<uint8_t>(std::min<int8_t>(31, static_cast<int8_t>(x[j] * id + 16.5f)));
      const uint8_t q1 = static_cast<uint8_t>(std::min<int8_t>(31, static_cast<int8_t>(x[j + 16] * id + 16.5f)));
      out[6 + j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>(q0 >> 4) << j | static_cast<uint32_t>(q1 >> 4) << (j + 16);
    }
    std::memcpy(out + 2, &qh, 4);
  }
}

// llama.cpp's dequantize_row_q4_0, written out: y[j] = (lo - 8) * d, y[j+16] = (hi - 8) * d.
inline void ggml_dequantize_q4_0(const uint8_t* in, int64_t n, float* y) {
  for (int64_t b = 0; b < n / 32; ++b, in += 18, y += 32) {
    uint16_t dh;
    std::memcpy(&dh, in, 2);
    const float d = f16_to_f32(dh);
    for (int j = 0; j < 16; ++j) {
      const int x0 = (in[2 + j] & 0x0F) - 8;
      const int x1 = (in[2 + j] >> 4) - 8;
      y[j] = static_cast<float>(x0) * d;
      y[j + 16] = static_cast<float>(x1) * d;
    }
  }
}

}  // namespace qrun::test
