// More vocabularies from llama.cpp's vocab-only GGUF test files, each checked against
// its .inp/.out pair (ids from Hugging Face tokenizers): gpt-2 (byte-level BPE with
// GPT-2's split pattern) and phi-3 (SentencePiece BPE by scores, with added tokens).
// The GGUF reader here is test-only: it reads just the tokenizer.ggml.* keys of
// trusted files into a TokenizerData.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_map>

#include "common/param_name.h"
#include "common/test_paths.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;

struct GgufValue {
  std::vector<std::string> strings;
  std::vector<double> numbers;  // scalars and numeric arrays
  std::string str;
};

class GgufReader {
 public:
  explicit GgufReader(const fs::path& p) : b_(test::read_bytes(p)) {}

  std::map<std::string, GgufValue> read_kv() {
    if (b_.size() < 24 || std::memcmp(b_.data(), "GGUF", 4) != 0) throw std::runtime_error("not a GGUF file");
    pos_ = 8;
    get<uint64_t>();  // tensor count
    const auto n = get<uint64_t>();
    std::map<std::string, GgufValue> kv;
    for (uint64_t k = 0; k < n; ++k) {
      const std::string key = string();
      GgufValue v;
      value(get<uint32_t>(), v);
      kv.emplace(key, std::move(v));
    }
    return kv;
  }

 private:
  template <class T>
  T get() {
    if (pos_ + sizeof(T) > b_.size()) throw std::runtime_error("truncated GGUF");
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string() {
    const auto n = get<uint64_t>();
    if (n > b_.size() - pos_) throw std::runtime_error("truncated GGUF string");
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void value(uint32_t type, GgufValue& v) {
    switch (type) {
      case 0: v.numbers.push_back(get<uint8_t>()); break;
      case 1: v.numbers.push_back(get<int8_t>()); break;
      case 2: v.numbers.push_back(get<uint16_t>()); break;
      case 3: v.numbers.push_back(get<int16_t>()); break;
      case 4: v.numbers.push_back(get<uint32_t>()); break;
      case 5: v.numbers.push_back(get<int32_t>()); break;
      case 6: v.numbers.push_back(get<float>()); break;
      case 7: v.numbers.push_back(get<uint8_t>()); break;
      case 8: v.strings.push_back(string()); v.str = v.strings.back(); break;
      case 9: {
        const auto elem = get<uint32_t>();
        const auto n = get<uint64_t>();
        for (uint64_t k = 0; k < n; ++k) value(elem, v);
        break;
      }
      case 10: v.numbers.push_back(static_cast<double>(get<uint64_t>())); break;
      case 11: v.numbers.push_back(static_cast<double>(get<int64_t>())); break;
      case 12: v.numbers.push_back(get<double>()); break;
      default: throw std::runtime_error("unknown GGUF type");
    }
  }
  std::vector<uint8_t> b_;
  size_t pos_ = 0;
};

constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::shared_ptr<const TokenizerData> tokenizer_from_gguf(const fs::path& p) {
  auto kv = GgufReader(p).read_kv();
  auto d = std::make_shared<TokenizerData>();
  d->pieces = kv.at("tokenizer.ggml.tokens").strings;
  const size_t n = d->pieces.size();
  for (double t : kv.at("tokenizer.ggml.token_type").numbers) d->types.push_back(static_cast<PieceType>(int(t)));
  if (kv.count("tokenizer.ggml.scores"))
    for (double s : kv["tokenizer.ggml.scores"].numbers) d->scores.push_back(static_cast<float>(s));
  d->scores.resize(n, 0.0f);
  auto id = [&](const char* key) { return kv.count(key) ? static_cast<int32_t>(kv[key].numbers.at(0)) : -1; };
  d->bos = id("tokenizer.ggml.bos_token_id");
  d->eos = id("tokenizer.ggml.eos_token_id");
  d->unk = id("tokenizer.ggml.unknown_token_id");
  if (kv.at("tokenizer.ggml.model").str == "gpt2") {
    d->kind = TokenizerKind::ByteLevel;
    d->byte_fallback = false;
    d->pretokenizer_regex = kGpt2Pattern;
    std::unordered_map<std::string, int32_t> ids;
    for (size_t i = 0; i < n; ++i) ids.emplace(d->pieces[i], static_cast<int32_t>(i));
    for (const std::string& m : kv.at("tokenizer.ggml.merges").strings) {
      const size_t sp = m.find(' ', 1);
      d->merges.emplace_back(ids.at(m.substr(0, sp)), ids.at(m.substr(sp + 1)));
    }
  } else {
    d->kind = TokenizerKind::SentencePiece;
  }
  return d;
}

struct GgufSuite {
  const char* name;
  bool parse_special;
};

class GgufVocab : public ::testing::TestWithParam<GgufSuite> {};

TEST_P(GgufVocab, EveryCaseMatchesExactly) {
  const fs::path base = test::shared_dir() / "tokenizers/llamacpp-vocab" / (std::string("ggml-vocab-") + GetParam().name + ".gguf");
  const Tokenizer tok(tokenizer_from_gguf(base));
  // Through the model-file encoding, as the runtime would see it.
  const Tokenizer stored(deserialize_tokenizer(serialize_tokenizer(tok.data()), "gguf", 0));
  const std::string inp = test::read_text(base.string() + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::ifstream out(base.string() + ".out");
  std::string line;
  size_t cases = 0;
  for (size_t at = 0;; ++cases) {
    const size_t next = inp.find(sep, at);
    if (next == std::string::npos) break;
    const std::string text = inp.substr(at, next - at);
    at = next + sep.size();
    ASSERT_TRUE(std::getline(out, line));
    std::vector<int32_t> want;
    std::istringstream ss(line);
    for (int32_t v; ss >> v;) want.push_back(v);
    EXPECT_EQ(stored.encode(text, false, GetParam().parse_special), want) << GetParam().name << " case " << cases;
    if (text.find('\xFF') == std::string::npos) {
      EXPECT_EQ(tok.decode(want), text) << GetParam().name << " case " << cases;
    }
  }
  EXPECT_GE(cases, 40u);
}

INSTANTIATE_TEST_SUITE_P(Gguf, GgufVocab,
                         ::testing::Values(GgufSuite{"gpt-2", true}, GgufSuite{"phi-3", false},
                                           GgufSuite{"llama-spm", false}),
                         [](const auto& info) { return test::param_name(info.param.name); });

}  // namespace
}  // namespace qrun
