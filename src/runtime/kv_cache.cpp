#include "qrun/kv_cache.h"

#include <algorithm>

namespace qrun {

KvCache::KvCache(const std::vector<int>& ring, int capacity, int kv_dim)
    : capacity_(capacity), kv_dim_(kv_dim), ring_(ring) {
  size_t total = 0;
  for (const int r : ring_) {
    rows_.push_back(r ? 2 * static_cast<size_t>(r) : static_cast<size_t>(capacity));
    first_.push_back(total);
    total += 2 * rows_.back() * static_cast<size_t>(kv_dim);
  }
  data_.resize(total);
}

void KvCache::mirror(int layer, int pos) {
  if (!ring(layer)) return;
  const size_t r = static_cast<size_t>(ring(layer));
  std::copy_n(key(layer, pos), kv_dim_, key(layer, pos) + r * kv_dim_);
  std::copy_n(value(layer, pos), kv_dim_, value(layer, pos) + r * kv_dim_);
}

}  // namespace qrun
