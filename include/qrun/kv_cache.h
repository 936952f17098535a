// Keys and values of past positions, each in its KvType (qrun/kv_type.h): f16 by default,
// or q8_0. Attention reads them in place (src/runtime/attention.h).
//
// A sliding-window layer may keep only a ring of its last `ring` positions (the window
// and one prompt batch). Each position is stored twice, at rows p % ring and
// p % ring + ring, so that any run of up to `ring` consecutive positions is one
// contiguous range of rows, as attention reads it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "qrun/kv_type.h"

namespace qrun {

class KvCache {
 public:
  // ring[l]: positions layer l keeps; 0 keeps the whole context (`capacity`).
  KvCache(const std::vector<int>& ring, int capacity, int kv_dim, int head_dim, KvType key_type = KvType::F16,
          KvType value_type = KvType::F16);
  KvCache(int n_layers, int capacity, int kv_dim, int head_dim, KvType key_type = KvType::F16,
          KvType value_type = KvType::F16)
      : KvCache(std::vector<int>(size_t(n_layers), 0), capacity, kv_dim, head_dim, key_type, value_type) {}

  int capacity() const { return capacity_; }
  int kv_dim() const { return kv_dim_; }
  int head_dim() const { return head_dim_; }
  KvType key_type() const { return type_[0]; }
  KvType value_type() const { return type_[1]; }
  int ring(int layer) const { return ring_[static_cast<size_t>(layer)]; }
  uint64_t bytes() const { return data_.size(); }
  // Bytes of one position's keys, or values, as stored.
  int64_t key_bytes() const { return row_bytes_[0]; }
  int64_t value_bytes() const { return row_bytes_[1]; }

  uint8_t* key(int layer, int pos) { return at(layer, 0, pos); }
  uint8_t* value(int layer, int pos) { return at(layer, 1, pos); }
  const uint8_t* key(int layer, int pos) const { return const_cast<KvCache*>(this)->key(layer, pos); }
  const uint8_t* value(int layer, int pos) const { return const_cast<KvCache*>(this)->value(layer, pos); }

  // Stores position pos's keys and values (kv_dim floats each), in a ring's second half too.
  void store(int layer, int pos, const float* k, const float* v);
  // kv_dim floats <-> one stored row of keys, in the key type.
  void encode_key(const float* k, uint8_t* out) const;
  void decode_key(const uint8_t* row, float* out) const;
  void decode_value(const uint8_t* row, float* out) const;
  // After pos's rows were written in place: their copy in a ring's second half.
  void mirror(int layer, int pos);

 private:
  uint8_t* at(int layer, int kv, int pos) {
    const size_t l = static_cast<size_t>(layer);
    const size_t row = static_cast<size_t>(ring_[l] ? pos % ring_[l] : pos);
    const size_t first_value = kv ? rows_[l] * static_cast<size_t>(row_bytes_[0]) : 0;
    return data_.data() + first_[l] + first_value + row * static_cast<size_t>(row_bytes_[kv]);
  }
  int capacity_, kv_dim_, head_dim_;
  KvType type_[2];
  int64_t row_bytes_[2];
  std::vector<int> ring_;
  std::vector<size_t> rows_, first_;  // per layer: rows of keys (and of values), first byte
  std::vector<uint8_t> data_;
};

}  // namespace qrun
