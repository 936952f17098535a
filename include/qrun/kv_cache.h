// Keys and values of past positions, stored in f16: half the memory of f32, and
// attention reads it with f16->f32 widening in the dot-product kernels.
//
// A sliding-window layer may keep only a ring of its last `ring` positions (the window
// and one prompt batch). Each position is stored twice, at rows p % ring and
// p % ring + ring, so that any run of up to `ring` consecutive positions is one
// contiguous range of rows, as attention reads it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qrun {

class KvCache {
 public:
  // ring[l]: positions layer l keeps; 0 keeps the whole context (`capacity`).
  KvCache(const std::vector<int>& ring, int capacity, int kv_dim);
  KvCache(int n_layers, int capacity, int kv_dim) : KvCache(std::vector<int>(size_t(n_layers), 0), capacity, kv_dim) {}

  int capacity() const { return capacity_; }
  int kv_dim() const { return kv_dim_; }
  int ring(int layer) const { return ring_[static_cast<size_t>(layer)]; }
  uint64_t bytes() const { return data_.size() * sizeof(uint16_t); }

  uint16_t* key(int layer, int pos) { return at(layer, 0, pos); }
  uint16_t* value(int layer, int pos) { return at(layer, 1, pos); }
  const uint16_t* key(int layer, int pos) const { return const_cast<KvCache*>(this)->key(layer, pos); }
  const uint16_t* value(int layer, int pos) const { return const_cast<KvCache*>(this)->value(layer, pos); }
  // After pos's key and value are written: their copy in a ring's second half.
  void mirror(int layer, int pos);

 private:
  uint16_t* at(int layer, int kv, int pos) {
    const size_t l = static_cast<size_t>(layer);
    const int row = ring_[l] ? pos % ring_[l] : pos;
    return data_.data() + first_[l] + (static_cast<size_t>(kv) * rows_[l] + static_cast<size_t>(row)) * kv_dim_;
  }
  int capacity_;
  int kv_dim_;
  std::vector<int> ring_;
  std::vector<size_t> rows_, first_;  // per layer: rows of keys (and of values), first element
  std::vector<uint16_t> data_;
};

}  // namespace qrun
