// Optional GPU offload of a contiguous run of layers (issue 7). The CPU forward pass
// hands the residual stream over once before the first offloaded layer and takes it
// back after the last, so activations cross PCIe once per batch, not once per op.
// Builds without CUDA get an implementation whose create() refuses clearly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "qrun/format.h"

namespace qrun {

struct ModelWeights;
class ModelFile;

struct GpuLayerRange {
  int first = 0;   // first offloaded layer
  int count = 0;   // 0: none
  bool contains(int l) const { return l >= first && l < first + count; }
};

// The offloaded range [first, first + count) of a model with n_layers layers; throws
// naming `path` when it does not lie inside the model.
GpuLayerRange checked_gpu_range(const std::string& path, int first, int count, int n_layers);

class GpuOffload {
 public:
  virtual ~GpuOffload() = default;

  // Copies the weights of `range` to device memory (plain cudaMalloc, same block
  // layout) and allocates that range's KV cache there. Throws qrun::Error when no GPU
  // is present, the driver is too old, or the layers do not fit (saying how many would).
  static std::unique_ptr<GpuOffload> create(const ModelFile& file, const ModelWeights& weights,
                                            GpuLayerRange range, int context, int batch);

  // Runs the offloaded layers on x (n tokens x dim floats, host memory) at positions
  // pos0 .. pos0+n-1, updating x in place.
  virtual void run_layers(float* x, int n, int pos0) = 0;

  // Device bytes the layers in `range` would need (weights + KV cache + buffers).
  static uint64_t device_bytes(const ModelFile& file, GpuLayerRange range, int context, int batch);

  virtual std::string device_name() const = 0;
};

}  // namespace qrun
