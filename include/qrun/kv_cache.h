// Keys and values of every past position, stored in f16: half the memory of f32,
// and attention reads it with f16->f32 widening in the dot-product kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qrun {

class KvCache {
 public:
  KvCache(int n_layers, int capacity, int kv_dim);

  int capacity() const { return capacity_; }
  int kv_dim() const { return kv_dim_; }
  uint64_t bytes() const { return data_.size() * sizeof(uint16_t); }

  uint16_t* key(int layer, int pos) { return at(layer, 0, pos); }
  uint16_t* value(int layer, int pos) { return at(layer, 1, pos); }
  const uint16_t* key(int layer, int pos) const { return const_cast<KvCache*>(this)->key(layer, pos); }
  const uint16_t* value(int layer, int pos) const { return const_cast<KvCache*>(this)->value(layer, pos); }

 private:
  uint16_t* at(int layer, int kv, int pos) {
    return data_.data() + ((static_cast<size_t>(layer) * 2 + kv) * capacity_ + pos) * kv_dim_;
  }
  int capacity_;
  int kv_dim_;
  std::vector<uint16_t> data_;
};

}  // namespace qrun
