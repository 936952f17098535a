// The split regexes of the byte-level BPE pre-tokenizers qrun runs, as Hugging Face's
// tokenizer.json files and llama.cpp's tokenizer.ggml.pre names give them. Both the
// tokenizer.json reader and the GGUF importer take them from here.
#pragma once

namespace qrun {

// GPT-2's, used by ByteLevel pre-tokenizers with use_regex = true (GGUF pre gpt-2).
inline constexpr const char* kGpt2Regex = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// GPT-2's after a Digits pre-tokenizer with individual_digits (StarCoder, Granite 3; GGUF
// pre refact and starcoder): every digit is its own piece and GPT-2's pattern splits the
// text between digits, so a run of spaces before a digit ends its segment. In one pass:
// digits alone, and "whitespace not followed by non-space" counts a digit as an end.
inline constexpr const char* kGpt2IndividualDigitsRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+)";

inline constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

inline constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// OpenAI's o200k (gpt-4o, gpt-oss; GGUF pre gpt-4o): words split where case changes, a
// contraction kept with its word, digits in runs of at most three.
inline constexpr const char* kO200kRegex =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
    R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace qrun
