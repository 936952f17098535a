// What the CUDA tests share: the skip when no GPU can be used (CI has none), and
// where ../shared lies, overridable with QRUN_SHARED_DIR_OVERRIDE because the GPU
// machine receives only a carried copy of the few files these tests read.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/test_paths.h"
#include "src/cuda/cuda_testing.h"

namespace qrun::test {

inline std::filesystem::path cuda_shared_dir() {
  const char* env = std::getenv("QRUN_SHARED_DIR_OVERRIDE");
  return env && *env ? std::filesystem::path(env) : shared_dir();
}

}  // namespace qrun::test

// Skips the current test, with the reason, unless a CUDA GPU is usable.
#define QRUN_REQUIRE_GPU()                                        \
  do {                                                            \
    std::string why_no_gpu;                                       \
    if (!::qrun::cuda_testing::gpu_available(&why_no_gpu))        \
      GTEST_SKIP() << "no GPU: " << why_no_gpu;                   \
  } while (0)
