#include "src/server/server_metrics.h"

#include <cstdio>

namespace qrun::server {

void ServerMetrics::add_generation(const ReplyEnd& end) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(end.usage.prompt - end.usage.cached);
  cached_tokens_ += static_cast<uint64_t>(end.usage.cached);
  predicted_tokens_ += static_cast<uint64_t>(end.usage.completion);
  prompt_seconds_ += end.prompt_ms / 1000;
  predicted_seconds_ += end.eval_ms / 1000;
}

void ServerMetrics::add_embedding(int prompt_tokens) {
  std::lock_guard lock(mutex_);
  prompt_tokens_ += static_cast<uint64_t>(prompt_tokens);
}

std::string ServerMetrics::prometheus(const PoolStats& pool) const {
  std::lock_guard lock(mutex_);
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    char line[128];
    std::snprintf(line, sizeof line, "%.17g", value);
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + line + "\n";
  };
  metric("qrun_prompt_tokens_total", "counter", "Prompt tokens evaluated (not those a worker's cache held).",
         static_cast<double>(prompt_tokens_));
  metric("qrun_prompt_tokens_cached_total", "counter", "Prompt tokens a worker's cache held.", static_cast<double>(cached_tokens_));
  metric("qrun_prompt_seconds_total", "counter", "Time spent evaluating prompts.", prompt_seconds_);
  metric("qrun_tokens_predicted_total", "counter", "Tokens generated.", static_cast<double>(predicted_tokens_));
  metric("qrun_tokens_predicted_seconds_total", "counter", "Time spent generating.", predicted_seconds_);
  metric("qrun_requests_served_total", "counter", "Requests a worker finished.", static_cast<double>(pool.served));
  metric("qrun_requests_cancelled_total", "counter", "Requests cancelled (the client left).", static_cast<double>(pool.cancelled));
  metric("qrun_requests_processing", "gauge", "Requests a worker is running.", pool.workers - pool.idle - pool.failing);
  metric("qrun_requests_deferred", "gauge", "Requests waiting for a worker.", pool.queued);
  metric("qrun_workers", "gauge", "Worker processes.", pool.workers);
  metric("qrun_worker_restarts_total", "counter", "Workers restarted after dying.", static_cast<double>(pool.restarts));
  return out;
}

}  // namespace qrun::server
