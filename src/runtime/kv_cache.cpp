#include "qrun/kv_cache.h"

namespace qrun {

KvCache::KvCache(int n_layers, int capacity, int kv_dim)
    : capacity_(capacity), kv_dim_(kv_dim),
      data_(static_cast<size_t>(n_layers) * 2 * capacity * kv_dim) {}

}  // namespace qrun
