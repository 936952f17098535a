// Everything a tokenizer needs, as stored in the model file (serialized by
// src/tokenizer/tokenizer_serialize.cpp). Filled from tokenizer.json or tokenizer.model.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qrun {

enum class PieceType : uint8_t {   // SentencePiece's numbering
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,   // also Hugging Face non-special added tokens
  Unused = 5,
  Byte = 6,          // <0xNN> byte-fallback pieces
};

enum class TokenizerKind : uint32_t {
  SentencePiece = 1,  // "▁" for spaces, dummy prefix, byte fallback (Llama 2, TinyLlama)
  ByteLevel = 2,      // regex pre-split, bytes mapped to printable code points (GPT-2, Llama 3, Qwen2)
};

struct TokenizerData {
  TokenizerKind kind = TokenizerKind::SentencePiece;
  std::vector<std::string> pieces;
  std::vector<float> scores;          // SentencePiece merge priority (higher first) when no merges
  std::vector<PieceType> types;
  // Merge rules in rank order, as piece ids (left, right). Empty: merge by scores.
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::string pretokenizer_regex;     // ByteLevel: the split pattern
  bool ignore_merges = false;         // ByteLevel: a word that is a whole piece is taken as is
  bool add_dummy_prefix = true;       // SentencePiece: prepend "▁"
  // SentencePiece: the "▁" also goes before text that follows a special or added token,
  // not only at the start. Hugging Face's Prepend normalizer runs on every segment
  // between added tokens, and llama.cpp does the same; Metaspace with
  // prepend_scheme "first" prefixes only the first segment.
  bool dummy_prefix_every_segment = true;
  bool byte_fallback = true;
  // SentencePiece normalizer option (its default when the field is absent): drop leading
  // and trailing spaces and collapse runs of spaces to one. Llama's models turn it off.
  bool remove_extra_whitespaces = false;
  bool nfc = false;                   // Unicode NFC normalization before splitting (Qwen2)
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  std::vector<int32_t> extra_eos;     // generation_config eos ids beyond `eos` (end-of-turn)
  bool add_bos = false, add_eos = false;
  std::string chat_template;
};

// The byte a byte-fallback piece stands for: exactly "<0xHH>" with two upper-case hex
// digits (the only spelling SentencePiece writes and Hugging Face looks up); -1 for
// anything else.
int byte_piece_value(std::string_view piece);

// Checks what encoding and decoding rely on beyond the bounds the readers check: every
// Byte piece spells a byte (SentencePiece refuses others as "Invalid byte piece"), and
// pieces, scores and types line up. Throws qrun::Error(file, offset, ...) naming the
// offending piece. Called by every reader and by the Tokenizer itself.
void validate_tokenizer_data(const TokenizerData& data, const std::string& file, int64_t offset);

}  // namespace qrun
