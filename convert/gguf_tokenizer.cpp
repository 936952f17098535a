// Rebuilding a tokenizer from a GGUF file's metadata, the way llama.cpp reads it
// (src/llama-vocab.cpp at c392e50): tokenizer.ggml.model "llama" is SentencePiece BPE
// merged by scores with byte fallback; "gpt2" is byte-level BPE with ranked merges and
// the split regex that tokenizer.ggml.pre names.
#include <string>
#include <unordered_map>

#include "convert/gguf_reader.h"
#include "convert/gguf_tokenizer.h"
#include "qrun/error.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/split_patterns.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {

namespace {

struct PreTokenizer {
  const char* names[8];
  const char* regex;
  bool ignore_merges;
  bool nfc;
};

constexpr PreTokenizer kPreTokenizers[] = {
    {{"default", "gpt-2", "gpt2", "mpt", "olmo", "phi-2", "jais", "roberta-bpe"}, kGpt2Regex, false, false},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, kLlama3Regex, true, false},
    {{"qwen2", "deepseek-r1-qwen"}, kQwen2Regex, false, true},
    {{"refact", "starcoder"}, kGpt2IndividualDigitsRegex, false, false},
    {{"gpt-4o"}, kO200kRegex, false, false},
};

const char* kSupportedPre = "gpt-2 (default, mpt, olmo, phi-2, jais, roberta-bpe), llama-bpe (llama3, llama-v3, falcon3), "
                            "qwen2 (deepseek-r1-qwen), refact (starcoder), gpt-4o";

int32_t checked_id(const GgufFile& g, const char* key, int32_t fallback, size_t n) {
  const GgufKV* kv = g.find(key);
  if (!kv) return fallback < static_cast<int64_t>(n) ? fallback : -1;
  // llama.cpp writes -1 (as u32 0xFFFFFFFF) for "none"; any id outside the vocabulary is none.
  if (kv->type == GgufValueType::I32 || kv->type == GgufValueType::I64) return kv->i >= 0 && kv->i < static_cast<int64_t>(n) ? static_cast<int32_t>(kv->i) : -1;
  const uint64_t v = g.get_uint(key);
  return v < n ? static_cast<int32_t>(v) : -1;
}

// gpt-oss's harmony vocabulary (o200k_harmony): a reply ends at <|return|> (the answer)
// or <|call|> (a tool call), never at <|end|>, which closes a message (its reasoning)
// inside a reply, as llama.cpp's vocabulary loader also decides from the tokens.
void harmony_end_of_turn(TokenizerData& d) {
  int32_t ret = -1, call = -1, end = -1, channel = -1;
  for (size_t i = 0; i < d.pieces.size(); ++i) {
    if (d.types[i] != PieceType::Control) continue;
    const std::string& p = d.pieces[i];
    int32_t* which = p == "<|return|>" ? &ret : p == "<|call|>" ? &call : p == "<|end|>" ? &end : p == "<|channel|>" ? &channel : nullptr;
    if (which) *which = static_cast<int32_t>(i);
  }
  if (ret < 0 || call < 0 || channel < 0) return;
  std::vector<int32_t> ends = {call};
  for (const int32_t id : d.extra_eos)
    if (id != end && id != call && id != ret) ends.push_back(id);
  if (d.eos >= 0 && d.eos != end && d.eos != ret) ends.push_back(d.eos);
  d.eos = ret;
  d.extra_eos = std::move(ends);
}

}  // namespace

std::shared_ptr<const TokenizerData> tokenizer_from_gguf(const GgufFile& g) {
  const std::string& file = g.path();
  const GgufKV* model_kv = g.find("tokenizer.ggml.model");
  if (!model_kv) throw Error(file, -1, "no tokenizer: metadata key 'tokenizer.ggml.model' is missing");
  const std::string model = g.get_string("tokenizer.ggml.model");
  auto d = std::make_shared<TokenizerData>();

  const auto& tokens = g.get_string_array("tokenizer.ggml.tokens");
  const size_t n = tokens.size();
  const GgufKV* tokens_kv = g.find("tokenizer.ggml.tokens");
  if (n == 0 || n > (size_t{1} << 22))
    g.fail(tokens_kv->offset, "tokenizer.ggml.tokens has " + std::to_string(n) + " entries (1 to 4194304 allowed)");
  d->pieces.reserve(n);
  for (std::string_view t : tokens) d->pieces.emplace_back(t);

  d->scores.assign(n, 0.0f);
  if (g.find("tokenizer.ggml.scores")) {
    d->scores = g.get_float_array("tokenizer.ggml.scores");
    if (d->scores.size() != n)
      g.fail(g.find("tokenizer.ggml.scores")->offset, "tokenizer.ggml.scores has " + std::to_string(d->scores.size()) +
                                                          " entries, tokenizer.ggml.tokens " + std::to_string(n));
  }
  d->types.assign(n, PieceType::Normal);
  if (const GgufKV* tt = g.find("tokenizer.ggml.token_type")) {
    const auto types = g.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != n)
      g.fail(tt->offset, "tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries, tokenizer.ggml.tokens " +
                             std::to_string(n));
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = types[i];
      if (t < 0 || t > 6)
        g.fail(tt->data_offset, "tokenizer.ggml.token_type[" + std::to_string(i) + "] is " + std::to_string(t) +
                                    " (0 to 6 allowed)");
      d->types[i] = t == 0 ? PieceType::Normal : static_cast<PieceType>(t);  // 0: llama.cpp's "undefined"
    }
  }

  if (model == "llama") {
    d->kind = TokenizerKind::SentencePiece;
    d->add_dummy_prefix = g.get_bool_or("tokenizer.ggml.add_space_prefix", true);
    d->remove_extra_whitespaces = g.get_bool_or("tokenizer.ggml.remove_extra_whitespaces", false);
    d->dummy_prefix_every_segment = true;  // llama.cpp prefixes every text run after a special token
    bool bytes = false;
    for (PieceType t : d->types) bytes |= t == PieceType::Byte;
    d->byte_fallback = bytes;
    d->unk = checked_id(g, "tokenizer.ggml.unknown_token_id", 0, n);
    d->bos = checked_id(g, "tokenizer.ggml.bos_token_id", 1, n);
    d->eos = checked_id(g, "tokenizer.ggml.eos_token_id", 2, n);
    d->add_bos = g.get_bool_or("tokenizer.ggml.add_bos_token", true);
  } else if (model == "gpt2") {
    d->kind = TokenizerKind::ByteLevel;
    d->byte_fallback = false;
    const std::string pre = g.get_string_or("tokenizer.ggml.pre", "default");
    const PreTokenizer* found = nullptr;
    for (const PreTokenizer& p : kPreTokenizers)
      for (const char* name : p.names)
        if (name && pre == name) found = &p;
    if (!found) {
      const GgufKV* pre_kv = g.find("tokenizer.ggml.pre");
      g.fail(pre_kv ? pre_kv->offset : 0, "tokenizer.ggml.pre '" + pre +
                                              "' is not supported (its split rules are not one regex qrun can run); "
                                              "supported: " + kSupportedPre);
    }
    d->pretokenizer_regex = found->regex;
    d->ignore_merges = found->ignore_merges;
    d->nfc = found->nfc;
    const GgufKV* merges_kv = g.find("tokenizer.ggml.merges");
    if (!merges_kv) throw Error(file, -1, "byte-level BPE vocabulary without 'tokenizer.ggml.merges'");
    const auto& merges = g.get_string_array("tokenizer.ggml.merges");
    std::unordered_map<std::string_view, int32_t> ids;
    ids.reserve(n);
    for (size_t i = 0; i < n; ++i) ids.emplace(d->pieces[i], static_cast<int32_t>(i));
    d->merges.reserve(merges.size());
    for (size_t k = 0; k < merges.size(); ++k) {
      const std::string_view m = merges[k];
      const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string_view::npos;
      auto a = sp == std::string_view::npos ? ids.end() : ids.find(m.substr(0, sp));
      auto b = sp == std::string_view::npos ? ids.end() : ids.find(m.substr(sp + 1));
      if (a == ids.end() || b == ids.end())
        g.fail(merges_kv->data_offset, "tokenizer.ggml.merges[" + std::to_string(k) + "] '" +
                                           std::string(m.substr(0, 60)) + "' does not name two vocabulary pieces");
      d->merges.emplace_back(a->second, b->second);
    }
    d->unk = checked_id(g, "tokenizer.ggml.unknown_token_id", -1, n);
    d->bos = checked_id(g, "tokenizer.ggml.bos_token_id", -1, n);
    d->eos = checked_id(g, "tokenizer.ggml.eos_token_id", -1, n);
    d->add_bos = g.get_bool_or("tokenizer.ggml.add_bos_token", false);
  } else {
    g.fail(model_kv->offset, "tokenizer.ggml.model '" + model +
                                 "' is not supported (only \"llama\": SentencePiece, and \"gpt2\": byte-level BPE)");
  }
  d->pad = checked_id(g, "tokenizer.ggml.padding_token_id", -1, n);
  d->add_eos = g.get_bool_or("tokenizer.ggml.add_eos_token", false);
  if (d->bos < 0) d->add_bos = false;
  if (d->eos < 0) d->add_eos = false;
  // End-of-turn and end-of-message tokens also end generation.
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    const int32_t id = checked_id(g, key, -1, n);
    if (id < 0 || id == d->eos) continue;
    if (d->eos < 0) d->eos = id;
    else d->extra_eos.push_back(id);
  }
  harmony_end_of_turn(*d);
  d->chat_template = g.get_string_or("tokenizer.chat_template", "");
  validate_tokenizer_data(*d, file, -1);
  return d;
}

std::shared_ptr<const TokenizerData> load_gguf_tokenizer(const std::filesystem::path& path) {
  const GgufFile g(path.string());
  return tokenizer_from_gguf(g);
}

}  // namespace qrun
