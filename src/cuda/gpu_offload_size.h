// Device memory a GPU offload needs, split so that a refusal can say how many layers
// would fit: per-layer bytes (weights + KV cache) and the activation buffers that all
// offloaded layers share. Plain arithmetic on the file's metadata, no CUDA needed.
#pragma once

#include <cstdint>

#include "qrun/model_file.h"

namespace qrun {

// The layer's whole tensor range as it lies in the file, plus its f16 K and V cache.
uint64_t gpu_layer_bytes(const ModelFile& file, int layer, int context);

// Residual stream, projections, FFN, int8 activation blocks and the RoPE table for
// `batch` tokens.
uint64_t gpu_buffer_bytes(const format::HParams& hp, int batch);

}  // namespace qrun
