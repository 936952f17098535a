// Turns CUDA status codes into qrun::Error at the call site, naming what failed, so a
// GPU problem reads like every other qrun error instead of a silent wrong answer.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "qrun/error.h"

namespace qrun::cuda {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

// Kernel launches report configuration errors lazily; call after each launch.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace qrun::cuda
