// Device memory: an owning buffer (plain cudaMalloc, never managed memory, so the
// card's memory is never oversubscribed), the device probe with clear refusals, and
// the upload of one layer's weights in the file's own block layout.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "qrun/model_file.h"
#include "src/runtime/layer_weights.h"

namespace qrun::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(uint64_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <class T = uint8_t>
  T* get() const { return static_cast<T*>(p_); }
  uint64_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  uint64_t bytes_ = 0;
};

// Device 0 made current, or qrun::Error saying why there is none usable: no GPU, or a
// driver older than the CUDA runtime this build links.
int require_device();
// Free bytes on the current device (cudaMemGetInfo).
uint64_t free_device_bytes();
std::string describe_device(int device);

// A weight matrix on the device: same dtype, shape and bytes as on the host.
struct DeviceWeight {
  DType dtype = DType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0;
};

// One layer's tensors, copied as the one contiguous range the file stores them in;
// the pointers below point into `storage`.
struct DeviceLayer {
  DeviceBuffer storage;
  const float* attention_norm = nullptr;
  const float* ffn_norm = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
  DeviceWeight wq, wk, wv, wo, w1, w2, w3;
};

DeviceLayer upload_layer(const ModelFile& file, const LayerWeights& w, int layer);

}  // namespace qrun::cuda
