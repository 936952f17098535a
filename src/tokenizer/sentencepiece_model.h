// Reads a SentencePiece tokenizer.model (a protobuf ModelProto) without protobuf:
// only the fields a BPE tokenizer needs, every length bounds-checked.
#pragma once

#include <string>

#include "src/tokenizer/tokenizer_data.h"

namespace qrun {

// Throws qrun::Error(path, offset, ...) on malformed input or unsupported models
// (unigram, or a normalizer other than identity-with-whitespace-escaping).
TokenizerData read_sentencepiece_model(const std::string& path);

}  // namespace qrun
