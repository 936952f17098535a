// Text embeddings from a causal language model, as llama.cpp's --embedding and
// /v1/embeddings make them: the final normed hidden states (what the output head reads)
// pooled over the tokens and scaled to unit length.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qrun/format.h"
#include "qrun/model.h"

namespace qrun {

// How token states become one vector; the values are llama.cpp's pooling_type (GGUF's
// `<arch>.pooling_type`), stored in HParams::pooling (up to format::kMaxPooling).
enum class Pooling : uint32_t {
  Unspecified = 0,  // the model says nothing: callers choose (qserve, qrun: Last)
  Mean = 1,         // the average of every token's state
  First = 2,        // the first token's ("cls")
  Last = 3,         // the last token's: decoder embedding models (Qwen3-Embedding, e5-mistral)
};

// "mean", "cls", "last" (llama.cpp's --pooling names); throws Error for anything else.
Pooling parse_pooling(std::string_view name);
const char* pooling_name(Pooling pooling);
// The pooling a run uses: `requested` (a --pooling name) when given, else the model's own,
// else Last when the file does not say. Throws Error for an unknown name.
Pooling resolve_pooling(const format::HParams& hp, std::string_view requested = {});

// The unit-length embedding of `tokens` (model.hparams().dim floats). Evaluates them in
// batches from an empty cache, or for Last pooling after the prefix the cache already holds
// (the same vector: a prompt's states do not depend on how it is split); the cache holds
// them afterwards (cls: the first only). Throws Error when they are empty or do not fit
// the context.
std::vector<float> embed(Model& model, std::span<const int32_t> tokens, Pooling pooling);

}  // namespace qrun
