// The front's worker processes: spawned from this executable (so each maps the model
// file itself), handed out to requests in arrival order, restarted when they die.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "src/server/line_channel.h"
#include "src/server/worker.h"

namespace qrun::server {

struct PoolStats {
  int workers = 0, idle = 0, queued = 0;
  int failing = 0;  // workers that died again before serving a request, waiting to be restarted
  uint64_t restarts = 0, cancelled = 0, served = 0;
};

class WorkerPool {
 public:
  // worker_argv: the command that starts one worker with its socket on fd 3.
  WorkerPool(std::vector<std::string> worker_argv, int count, int max_queue);
  ~WorkerPool();

  struct Event {
    enum Kind { Text, Done, Error, Timeout, Died } kind;
    std::string text;         // Text; Error's message
    std::string json;         // Done: the whole line; Text: its tokens' logprobs (a JSON list), or 
  };

  // One request's use of one worker. Destroying a lease whose job is still running
  // cancels it and waits for the worker to finish (or kills a worker that does not).
  class Lease {
   public:
    ~Lease();
    bool send(const Job& job);
    Event next(int timeout_ms);
    void cancel();

   private:
    friend class WorkerPool;
    Lease(WorkerPool& pool, size_t slot) : pool_(pool), slot_(slot) {}
    WorkerPool& pool_;
    size_t slot_;
    uint64_t job_id_ = 0;
    bool running_ = false, dead_ = false, cancel_sent_ = false;
    std::string done_json_;
  };

  // Waits, in arrival order, for an idle worker, and takes the idle one whose KV cache
  // shares the longest prefix with `prompt`. Throws ApiError(503) when max_queue
  // requests are waiting already.
  std::unique_ptr<Lease> acquire(std::span<const int32_t> prompt);
  PoolStats stats();

 private:
  struct Worker {
    pid_t pid = -1;
    std::unique_ptr<LineChannel> channel;
    bool busy = false;
    std::vector<int32_t> cache;  // the tokens its KV cache holds after its last job
    uint64_t last_used = 0;      // acquire() serial; 0: never
    uint64_t process = 0;        // spawn() serial: tells a restarted worker from the one it replaced
    int failures = 0;            // deaths since it last finished a request or lived 2 s
    std::chrono::steady_clock::time_point spawned_at;
    std::chrono::steady_clock::time_point respawn_at;  // when channel is null: the next try
  };
  void spawn(Worker& w);
  void restart(Worker& w);  // lock held
  void respawn_due(std::chrono::steady_clock::time_point now);  // lock held
  void release(size_t slot, bool dead, const std::string& done_json);
  void watch_idle_workers();

  std::vector<std::string> argv_;
  int max_queue_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Worker> workers_;
  std::deque<uint64_t> waiting_;  // tickets, oldest first
  uint64_t next_ticket_ = 0, next_job_ = 1, next_use_ = 0, spawned_ = 0;
  PoolStats counters_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace qrun::server
