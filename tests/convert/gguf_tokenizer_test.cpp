// Tokenizers rebuilt from GGUF metadata (load_gguf_tokenizer): llama.cpp's vocab-only
// GGUF files against their .inp/.out cases (ids from Hugging Face tokenizers), and
// ../shared/golden/tokenize where a GGUF of that vocabulary exists or is written here
// (stories260K and Llama 2 SentencePiece; Llama 3 and Qwen byte-level BPE written from
// their tokenizer.json as llama.cpp's converter would, with tokenizer.ggml.pre).
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/gguf_stories.h"
#include "common/gguf_writer.h"
#include "common/test_paths.h"
#include "convert/gguf_reader.h"
#include "convert/gguf_tokenizer.h"
#include "qrun/error.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;

fs::path vocab_dir() { return test::shared_dir() / "tokenizers/llamacpp-vocab"; }

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> inp_out_cases(const fs::path& inp_path) {
  const std::string inp = test::read_text(inp_path);
  std::ifstream out(fs::path(inp_path).replace_extension(".out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  std::string line;
  for (size_t at = 0;;) {
    const size_t next = inp.find(sep, at);
    if (next == std::string::npos) break;
    Case c;
    c.text = inp.substr(at, next - at);
    at = next + sep.size();
    if (!std::getline(out, line)) break;
    std::istringstream ss(line);
    for (int32_t v; ss >> v;) c.ids.push_back(v);
    cases.push_back(std::move(c));
  }
  return cases;
}

std::vector<Case> golden_cases(const std::string& name) {
  std::ifstream in(test::shared_dir() / "golden/tokenize" / (name + ".jsonl"));
  std::vector<Case> cases;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    cases.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int32_t>>()});
  }
  return cases;
}

// Encodes every case (through the model-file encoding, as the runtime sees it); returns
// the number of mismatches and reports the first few.
int mismatches(const std::shared_ptr<const TokenizerData>& d, const std::vector<Case>& cases, bool parse_special,
               const std::string& what) {
  const Tokenizer tok(deserialize_tokenizer(serialize_tokenizer(*d), "gguf", 0));
  int bad = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto got = tok.encode(cases[i].text, false, parse_special);
    if (got != cases[i].ids && ++bad <= 3) ADD_FAILURE() << what << " case " << i << ": '" << cases[i].text.substr(0, 60) << "'";
  }
  return bad;
}

// Every vocab-only GGUF of llama.cpp's test set: either every case matches, or the
// tokenizer is refused with a message naming what is unsupported. starcoder and refact
// (Granite 3's tokenizer: each digit split off before GPT-2's pattern) must match.
TEST(GgufTokenizer, LlamaCppVocabFiles) {
  // tokenizer.ggml.pre values whose split rules are several regex stages, and BERT's
  // WordPiece: refused.
  const std::map<std::string, std::string> refused = {
      {"bert-bge", "tokenizer.ggml.model 'bert'"}, {"deepseek-coder", "tokenizer.ggml.pre 'deepseek-coder'"},
      {"deepseek-llm", "tokenizer.ggml.pre 'deepseek-llm'"}, {"falcon", "tokenizer.ggml.pre 'falcon'"},
      {"baichuan", ""}, {"gpt-neox", ""}};
  std::set<std::string> must_match = {"starcoder", "refact", "gpt-2"};
  const std::set<std::string> no_special = {"phi-3", "llama-spm"};  // their .out cases treat special text as text
  int matched = 0;
  for (const auto& e : fs::directory_iterator(vocab_dir())) {
    if (e.path().extension() != ".gguf") continue;
    std::string name = e.path().stem().string().substr(std::string("ggml-vocab-").size());
    std::shared_ptr<const TokenizerData> d;
    try {
      d = load_gguf_tokenizer(e.path());
    } catch (const Error& err) {
      ASSERT_TRUE(refused.count(name)) << name << ": " << err.what();
      EXPECT_NE(std::string(err.what()).find(refused.at(name)), std::string::npos) << err.what();
      EXPECT_NE(std::string(err.what()).find(e.path().filename().string()), std::string::npos) << err.what();
      continue;
    }
    const fs::path inp = e.path().string() + ".inp";
    if (!fs::exists(inp)) continue;
    const auto cases = inp_out_cases(inp);
    ASSERT_GE(cases.size(), 30u) << name;
    EXPECT_EQ(mismatches(d, cases, !no_special.count(name), name), 0) << name;
    must_match.erase(name);
    ++matched;
  }
  EXPECT_TRUE(must_match.empty()) << *must_match.begin() << " was not matched";
  EXPECT_GE(matched, 6);
}

TEST(GgufTokenizer, Llama2GoldenThroughLlamaSpmGguf) {
  const auto d = load_gguf_tokenizer(vocab_dir() / "ggml-vocab-llama-spm.gguf");
  EXPECT_EQ(d->kind, TokenizerKind::SentencePiece);
  EXPECT_EQ(d->bos, 1);
  EXPECT_EQ(d->eos, 2);
  EXPECT_TRUE(d->add_bos);
  EXPECT_EQ(mismatches(d, golden_cases("llama2"), false, "llama2"), 0);
}

TEST(GgufTokenizer, StoriesGoldenThroughWrittenGguf) {
  test::GgufWriter w;
  test::add_stories_tokenizer(w);
  const auto b = w.bytes();
  const GgufFile g(b.data(), b.size(), "stories.gguf");
  EXPECT_EQ(mismatches(tokenizer_from_gguf(g), golden_cases("stories260K"), false, "stories260K"), 0);
}

// A byte-level BPE tokenizer.json written as GGUF metadata (tokens, token_type, merges,
// pre) the way convert_hf_to_gguf.py does it; `edit` changes the vocabulary first.
std::vector<uint8_t> bpe_gguf(const fs::path& hf_dir, const std::string& pre,
                              const std::function<void(TokenizerData&, test::GgufWriter&)>& edit = {}) {
  auto hf = std::make_shared<TokenizerData>(*load_hf_tokenizer(hf_dir));
  test::GgufWriter w;
  if (edit) edit(*hf, w);
  w.str("tokenizer.ggml.model", "gpt2");
  w.str("tokenizer.ggml.pre", pre);
  w.strings("tokenizer.ggml.tokens", hf->pieces);
  std::vector<int32_t> types;
  for (PieceType t : hf->types) types.push_back(static_cast<int32_t>(t));
  w.i32s("tokenizer.ggml.token_type", types);
  std::vector<std::string> merges;
  for (const auto& [a, b] : hf->merges) merges.push_back(hf->pieces[size_t(a)] + " " + hf->pieces[size_t(b)]);
  w.strings("tokenizer.ggml.merges", merges);
  if (hf->bos >= 0) w.u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(hf->bos));
  if (hf->eos >= 0) w.u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(hf->eos));
  w.boolean("tokenizer.ggml.add_bos_token", hf->add_bos);
  w.str("tokenizer.chat_template", hf->chat_template);
  return w.bytes();
}

struct BpeCase {
  const char* hf_dir;
  const char* pre;
  const char* golden;
  const char* inp;  // llama.cpp's cases for the same vocabulary (its GGUF is not shipped)
};

class GgufBpe : public ::testing::TestWithParam<BpeCase> {};

TEST_P(GgufBpe, GoldenAndLlamaCppCases) {
  const auto b = bpe_gguf(test::shared_dir() / "tokenizers" / GetParam().hf_dir, GetParam().pre);
  const GgufFile g(b.data(), b.size(), "bpe.gguf");
  const auto d = tokenizer_from_gguf(g);
  EXPECT_EQ(d->kind, TokenizerKind::ByteLevel);
  EXPECT_FALSE(d->chat_template.empty());
  // transformers.js (the golden reference) splits special-token text out of the input.
  EXPECT_EQ(mismatches(d, golden_cases(GetParam().golden), true, GetParam().golden), 0);
  EXPECT_EQ(mismatches(d, inp_out_cases(vocab_dir() / GetParam().inp), true, GetParam().inp), 0);
}

INSTANTIATE_TEST_SUITE_P(Gguf, GgufBpe,
                         ::testing::Values(BpeCase{"llama3", "llama-bpe", "llama3", "ggml-vocab-llama-bpe.gguf.inp"},
                                           BpeCase{"qwen3", "qwen2", "qwen3", "ggml-vocab-qwen2.gguf.inp"}),
                         [](const auto& info) { return std::string(info.param.golden); });

// gpt-oss's vocabulary (o200k_harmony, GGUF pre gpt-4o): o200k's split, which also
// breaks words where lower case turns upper, on llama3's pieces here; a reply ends at
// <|return|> or <|call|>, not at <|end|> (a message's end inside a reply), whatever the
// file's end-of-turn id says.
TEST(GgufTokenizer, Gpt4oSplitAndHarmonyEnds) {
  const fs::path llama3 = test::shared_dir() / "tokenizers" / "llama3";
  const std::vector<std::string> names = {"<|return|>", "<|call|>", "<|end|>", "<|channel|>"};
  const auto harmony = [&](TokenizerData& d, test::GgufWriter& w) {
    for (size_t k = 0; k < names.size(); ++k) d.pieces[128010 + k] = names[k];
    w.u32("tokenizer.ggml.eot_token_id", 128012);  // <|end|>
  };
  const auto b = bpe_gguf(llama3, "gpt-4o", harmony), l = bpe_gguf(llama3, "llama-bpe");
  const GgufFile gg(b.data(), b.size(), "o200k.gguf"), gl(l.data(), l.size(), "llama3.gguf");
  const Tokenizer o200k(tokenizer_from_gguf(gg)), plain(tokenizer_from_gguf(gl));
  // Each piece o200k's pattern splits off encodes on its own; llama3's keeps the word whole.
  const auto pieces = [&](std::initializer_list<const char*> parts) {
    std::vector<int32_t> ids;
    for (const char* p : parts)
      for (const int32_t id : o200k.encode(p, false, false)) ids.push_back(id);
    return ids;
  };
  EXPECT_EQ(o200k.encode("toString parseInt", false, false), pieces({"to", "String", " parse", "Int"}));
  EXPECT_NE(plain.encode("toString parseInt", false, false), pieces({"to", "String", " parse", "Int"}));
  EXPECT_EQ(o200k.encode("innerHTML", false, false), pieces({"inner", "HTML"}));
  EXPECT_EQ(o200k.encode("path/\nx", false, false), pieces({"path", "/\n", "x"}));
  EXPECT_EQ(o200k.encode("12345", false, false), pieces({"123", "45"}));
  EXPECT_EQ(o200k.eos_ids(), (std::vector<int32_t>{128010, 128011, 128001}));  // <|return|>, <|call|>, the file's EOS
  EXPECT_FALSE(o200k.is_eos(128012));
}

TEST(GgufTokenizer, RefusesBadVocabularies) {
  auto err = [](const test::GgufWriter& w) {
    const auto b = w.bytes();
    try {
      const GgufFile g(b.data(), b.size(), "v.gguf");
      tokenizer_from_gguf(g);
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  test::GgufWriter none;
  EXPECT_NE(err(none).find("tokenizer.ggml.model"), std::string::npos);
  test::GgufWriter wpm;
  wpm.str("tokenizer.ggml.model", "bert");
  wpm.strings("tokenizer.ggml.tokens", {"a"});
  EXPECT_NE(err(wpm).find("'bert' is not supported"), std::string::npos);
  test::GgufWriter types;
  types.str("tokenizer.ggml.model", "llama");
  types.strings("tokenizer.ggml.tokens", {"a", "b"});
  types.i32s("tokenizer.ggml.token_type", {1});
  EXPECT_NE(err(types).find("token_type has 1 entries"), std::string::npos);
  test::GgufWriter merges;
  merges.str("tokenizer.ggml.model", "gpt2");
  merges.str("tokenizer.ggml.pre", "gpt-2");
  merges.strings("tokenizer.ggml.tokens", {"a", "b"});
  merges.strings("tokenizer.ggml.merges", {"a c"});
  EXPECT_NE(err(merges).find("merges[0]"), std::string::npos);
  test::GgufWriter pre;
  pre.str("tokenizer.ggml.model", "gpt2");
  pre.str("tokenizer.ggml.pre", "smollm");
  pre.strings("tokenizer.ggml.tokens", {"a"});
  EXPECT_NE(err(pre).find("tokenizer.ggml.pre 'smollm' is not supported"), std::string::npos);
  test::GgufWriter bytes;  // a Byte piece that spells no byte
  bytes.str("tokenizer.ggml.model", "llama");
  bytes.strings("tokenizer.ggml.tokens", {"<0xZZ>"});
  bytes.i32s("tokenizer.ggml.token_type", {6});
  EXPECT_FALSE(err(bytes).empty());
}

}  // namespace
}  // namespace qrun
