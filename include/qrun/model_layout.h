// The tensor set an architecture requires: names and shapes derived from the
// hyper-parameters. The converter writes exactly this set; the reader checks it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qrun/format.h"

namespace qrun {

enum class TensorRole { Embedding, Norm, Projection, Bias, Output };

struct TensorSpec {
  std::string name;
  int64_t cols;     // ne[0]
  int64_t rows;     // ne[1]; 1 for vectors
  int n_dims;
  int layer;        // -1 for global
  TensorRole role;
};

// In file order: tok_embeddings, layers 0..L-1, norm, output (unless tied).
std::vector<TensorSpec> expected_tensors(const format::HParams& hp);

std::string layer_tensor_name(int layer, const char* what);  // "layers.3.wq"

// Throws qrun::Error(file, offset, ...) if the hyper-parameters are inconsistent.
void validate_hparams(const format::HParams& hp, const std::string& file, int64_t offset);

// Whether a layer attends through the sliding window (Mistral: all; Gemma 2: even layers;
// Gemma 3: all but every sliding_period-th). Sliding layers take rope_local_theta if set.
bool layer_is_sliding(const format::HParams& hp, int layer);

// Whether a layer turns q and k with RoPE (SmolLM3's every fourth layer does not: NoPE).
bool layer_uses_rope(const format::HParams& hp, int layer);

// The multipliers of the residual stream, 1 where the file stores 0: embeddings (Gemma's
// sqrt(dim) under kEmbedScale, else Granite's embedding_scale), each attention and FFN
// output joining it (residual_scale), and the logits' divisor (logit_scale).
float embedding_scale(const format::HParams& hp);
float residual_scale(const format::HParams& hp);
float logit_scale(const format::HParams& hp);

const char* arch_name(uint32_t arch);

}  // namespace qrun
