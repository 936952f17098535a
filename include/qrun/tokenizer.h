// Tokenizers with exact Hugging Face parity (issue 3). TokenizerData is everything a
// tokenizer needs; the converter serializes it into the model file, the runtime
// deserializes it from there. Nothing else is read at run time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qrun {

class ModelFile;

struct TokenizerData;  // src/tokenizer/tokenizer_data.h

// Reads a Hugging Face tokenizer folder: tokenizer.json and/or tokenizer.model, plus
// tokenizer_config.json, generation_config.json and config.json when present.
// Throws qrun::Error naming the file and the problem.
std::shared_ptr<const TokenizerData> load_hf_tokenizer(const std::filesystem::path& dir);

// Rebuilds the tokenizer stored in a GGUF file's tokenizer.ggml.* metadata
// (SentencePiece "llama" or byte-level BPE "gpt2" with its tokenizer.ggml.pre split
// rules, special ids, add_bos/eos, chat template). Throws qrun::Error naming the file,
// offset and key for malformed or unsupported vocabularies.
std::shared_ptr<const TokenizerData> load_gguf_tokenizer(const std::filesystem::path& gguf);

// Versioned binary encoding stored in the model file; deserialize bounds-checks every
// length and offset (blob_offset and file are used in error messages).
std::vector<uint8_t> serialize_tokenizer(const TokenizerData& data);
std::shared_ptr<const TokenizerData> deserialize_tokenizer(std::span<const uint8_t> blob,
                                                           const std::string& file,
                                                           uint64_t blob_offset);
// The tokenizer embedded in a validated model file.
std::shared_ptr<const TokenizerData> deserialize_tokenizer(const ModelFile& file);

class Tokenizer {
 public:
  explicit Tokenizer(std::shared_ptr<const TokenizerData> data);
  ~Tokenizer();

  // add_special: prepend BOS (and append EOS) as the tokenizer's config says.
  // parse_special: special-token text in `text` becomes the special token; else it is text.
  // Non-special added tokens (user-defined pieces) are always matched whole.
  // Invalid UTF-8 never throws: each byte that is not part of a valid character is
  // encoded as that raw byte (SentencePiece: its <0xNN> byte-fallback token, or UNK
  // without byte fallback; byte-level: its mapped code point, merged like any other),
  // so decode() gives the same bytes back.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // Text that continues earlier text (a chat turn after the previous one): as encode()
  // without BOS and without SentencePiece's dummy-prefix space at its start, which the
  // whole text encoded at once has only at the very beginning.
  std::vector<int32_t> encode_continuation(std::string_view text, bool parse_special) const;
  // Concatenated decoding of ids (skips BOS/EOS/control tokens unless keep_special).
  std::string decode(std::span<const int32_t> ids, bool keep_special = false) const;

  int32_t vocab_size() const;
  int32_t bos_id() const;                      // -1 when none
  bool is_eos(int32_t id) const;               // EOS or any end-of-turn id
  std::vector<int32_t> eos_ids() const;
  std::string_view piece(int32_t id) const;    // raw vocabulary entry
  const std::string& chat_template() const;    // empty when none
  std::string kind_name() const;               // "sentencepiece-bpe", "byte-level-bpe", ...
  // The bytes one token stands for (may be part of a UTF-8 character).
  std::string token_text(int32_t id, bool keep_special = false) const;
  // ... a special token's text only when it is among `kept` (a reply's kept markers).
  std::string token_text(int32_t id, std::span<const int32_t> kept) const;
  // SentencePiece decoders drop the dummy-prefix space of the first token.
  bool strips_leading_space() const;
  const TokenizerData& data() const { return *data_; }

 private:
  std::shared_ptr<const TokenizerData> data_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Streaming decoder: bytes of a token that end inside a UTF-8 character are held until
// the character completes, so every string returned by push() is valid UTF-8.
// at_text_start: the first token begins the text, so a SentencePiece dummy-prefix space
// is dropped from it. Tokens generated after a prompt continue that prompt's text and
// keep their leading space ("Once" + "▁upon" is "Once upon"): pass false.
// kept: special tokens whose text the reply keeps (a tool call's markers).
class StreamingDecoder {
 public:
  StreamingDecoder(const Tokenizer& tok, bool at_text_start, std::vector<int32_t> kept = {});
  std::string push(int32_t id);   // text that became complete with this token
  std::string flush();            // whatever is held (invalid tails replaced by U+FFFD)

 private:
  const Tokenizer& tok_;
  std::vector<int32_t> kept_;
  std::string pending_;
  bool first_ = true;
};

}  // namespace qrun
