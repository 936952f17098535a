// What qserve has done, for GET /metrics in Prometheus's text format (as llama.cpp's
// server --metrics gives it): tokens evaluated and predicted with their time, requests
// served, processing and queued, workers and restarts.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "src/server/reply_shape.h"
#include "src/server/worker_pool.h"

namespace qrun::server {

class ServerMetrics {
 public:
  void add_generation(const ReplyEnd& end);
  void add_embedding(int prompt_tokens);
  std::string prometheus(const PoolStats& pool) const;

 private:
  mutable std::mutex mutex_;
  uint64_t prompt_tokens_ = 0;  // evaluated: the prompt less what a worker's cache held
  uint64_t cached_tokens_ = 0;
  uint64_t predicted_tokens_ = 0;
  double prompt_seconds_ = 0, predicted_seconds_ = 0;
};

}  // namespace qrun::server
