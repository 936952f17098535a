// Builds without CUDA (-DQRUN_CUDA=OFF, or AUTO without nvcc): offloading is refused
// with the way to get it, and the test helpers report that no GPU backend exists.
#include "qrun/error.h"
#include "src/cuda/cuda_testing.h"
#include "src/runtime/gpu_offload.h"

namespace qrun {

namespace {
constexpr const char* kNoCuda = "this build has no CUDA backend; rebuild with -DQRUN_CUDA=ON";
}

std::unique_ptr<GpuOffload> GpuOffload::create(const ModelFile&, const ModelWeights&, GpuLayerRange, int, int) {
  throw Error(kNoCuda);
}

namespace cuda_testing {

bool gpu_available(std::string* why) {
  *why = kNoCuda;
  return false;
}
void quantize_activations(const float*, int64_t, int64_t, BlockQ8A*) { throw Error(kNoCuda); }
void matmul(DType, const void*, int64_t, int64_t, int64_t, const float*, float*) { throw Error(kNoCuda); }
void rmsnorm(float*, const float*, const float*, int64_t, int64_t, float) { throw Error(kNoCuda); }
void swiglu(float*, const float*, int64_t) { throw Error(kNoCuda); }
void rope(float*, int, int, int, const std::vector<float>&) { throw Error(kNoCuda); }
void attention(const float*, const uint16_t*, const uint16_t*, int, int, int, int, int, float*) {
  throw Error(kNoCuda);
}

}  // namespace cuda_testing
}  // namespace qrun
