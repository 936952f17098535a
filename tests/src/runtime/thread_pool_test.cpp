#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "qrun/thread_pool.h"

namespace qrun {
namespace {

// Every index is visited exactly once, over many back-to-back jobs (the spinning
// hand-off between jobs is where a race would lose or repeat work).
TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(1000);
    for (int job = 0; job < 2000; ++job) {
      const int64_t n = 1 + job % 1000;
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
      });
    }
    for (size_t i = 0; i < hits.size(); ++i) {
      int expected = 0;
      for (int job = 0; job < 2000; ++job) expected += static_cast<int>(i) < 1 + job % 1000;
      ASSERT_EQ(hits[i].load(), expected) << "threads " << threads << " index " << i;
    }
  }
}

TEST(ThreadPool, RunGivesEachThreadItsIndex) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> seen(4);
  pool.run([&](int t, int n) {
    EXPECT_EQ(n, 4);
    seen[static_cast<size_t>(t)].fetch_add(1);
  });
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
}

TEST(ThreadPool, DefaultIsPhysicalCores) { EXPECT_GE(physical_core_count(), 1); }

}  // namespace
}  // namespace qrun
