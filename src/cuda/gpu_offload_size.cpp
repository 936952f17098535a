// Sizing shared by the CUDA build and the no-CUDA build (memory estimates and the
// stub's device_bytes need no GPU).
#include "src/cuda/gpu_offload_size.h"

#include <algorithm>

#include "qrun/error.h"
#include "simd/kernels.h"
#include "src/runtime/gpu_offload.h"

namespace qrun {

GpuLayerRange checked_gpu_range(const std::string& path, int first, int count, int n_layers) {
  if (first < 0 || count < 0 || first + count > n_layers)
    throw Error(path, -1, "GPU layers " + std::to_string(first) + "-" + std::to_string(first + count - 1) +
                              " are outside the model's " + std::to_string(n_layers) + " layers");
  return GpuLayerRange{first, count};
}

uint64_t gpu_layer_bytes(const ModelFile& file, int layer, int context) {
  const auto& hp = file.hparams();
  const uint64_t kv_dim = uint64_t{hp.n_kv_heads} * hp.head_dim;
  return file.layers()[static_cast<size_t>(layer)].size + 2 * uint64_t(context) * kv_dim * sizeof(uint16_t);
}

uint64_t gpu_buffer_bytes(const format::HParams& hp, int batch) {
  const uint64_t b = static_cast<uint64_t>(batch);
  const uint64_t q_dim = uint64_t{hp.n_heads} * hp.head_dim, kv_dim = uint64_t{hp.n_kv_heads} * hp.head_dim;
  const uint64_t widest = std::max({uint64_t{hp.dim}, uint64_t{hp.hidden_dim}, q_dim});
  const uint64_t floats = b * (hp.dim + std::max(uint64_t{hp.dim}, q_dim) + q_dim + 2 * kv_dim + 2 * uint64_t{hp.hidden_dim}) +
                          hp.head_dim / 2;
  return floats * sizeof(float) + b * static_cast<uint64_t>(q8a_blocks(static_cast<int64_t>(widest))) * sizeof(BlockQ8A);
}

uint64_t GpuOffload::device_bytes(const ModelFile& file, GpuLayerRange range, int context, int batch) {
  if (range.count <= 0) return 0;
  uint64_t bytes = gpu_buffer_bytes(file.hparams(), batch);
  for (int l = range.first; l < range.first + range.count; ++l) bytes += gpu_layer_bytes(file, l, context);
  return bytes;
}

}  // namespace qrun
