// The tokenizer stored in a GGUF file's metadata (tokenizer.ggml.*), as qrun's
// TokenizerData; implemented in convert/gguf_tokenizer.cpp. The public entry point taking
// a path is load_gguf_tokenizer in include/qrun/tokenizer.h.
#pragma once

#include <memory>

#include "convert/gguf_reader.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {

// Throws qrun::Error naming the file, the key's offset and the problem for malformed
// or unsupported vocabularies (tokenizer.ggml.model other than "llama" or "gpt2", a
// tokenizer.ggml.pre whose split rules qrun cannot express).
std::shared_ptr<const TokenizerData> tokenizer_from_gguf(const GgufFile& gguf);

}  // namespace qrun
