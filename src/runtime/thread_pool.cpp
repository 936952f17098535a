#include "qrun/thread_pool.h"

#include "qrun/cpu_info.h"

#include <algorithm>

namespace qrun {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
// About 50-100 us of spinning before a worker sleeps: long enough to span the gap
// between two kernels of one forward pass, short enough not to burn a core idle.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinIterations; ++spin) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      // The caller only pays for a futex wake when someone actually sleeps; wait()
      // returns at once if a job was published between the check and the sleep.
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      while ((g = generation_.load(std::memory_order_seq_cst)) == seen) generation_.wait(seen, std::memory_order_acquire);
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    (*job_)(index, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn, int max_threads) {
  const int used = std::min(n_threads_, std::max(1, max_threads));
  if (used == 1) {
    fn(0, 1);
    return;
  }
  // Idle workers still take part in the hand-off; they just skip the work.
  const std::function<void(int, int)> job = [&](int t, int) {
    if (t < used) fn(t, used);
  };
  job_ = used == n_threads_ ? &fn : &job;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
  (*job_)(0, n_threads_);
  // A worker preempted by another process would make a pure spin burn its whole
  // time slice; after a while, give the core away.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpinIterations) cpu_relax();
    else std::this_thread::yield();
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int max_threads) {
  if (n <= 0) return;
  const int used = static_cast<int>(std::min<int64_t>(std::min(n_threads_, std::max(1, max_threads)), n));
  run([&](int t, int nt) { fn(n * t / nt, n * (t + 1) / nt); }, used);
}

int physical_core_count() { return cpu_info().physical_cores; }

}  // namespace qrun
