// A persistent pool whose workers spin briefly between jobs: on small models a
// forward pass issues thousands of short parallel sections, and waking sleeping
// threads would cost more than the math. Workers fall back to a futex wait when idle.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace qrun {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);   // total threads, the caller included
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_used) on threads [0, n_used) with n_used =
  // min(size(), max_threads) (the caller is thread 0) and returns when all are done.
  // Not re-entrant.
  void run(const std::function<void(int, int)>& fn, int max_threads = 1 << 30);

  // Splits [0, n) into contiguous chunks, one per thread (at most max_threads):
  // fn(begin, end). Small jobs should ask for fewer threads than the hand-off costs.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int max_threads = 1 << 30);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

// Physical cores (cpuinfo; the performance cores of a hybrid CPU, src/runtime/cpu_info.cpp), at
// least 1: the default thread count.
int physical_core_count();

}  // namespace qrun
