// Special-token segments, files and blobs from strangers (truncated, bit-flipped:
// qrun::Error or a working tokenizer, never a crash), and the qtok tool.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/run_command.h"
#include "common/test_paths.h"
#include "qrun/error.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {
namespace {

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> parts) {
  std::vector<int32_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// SentencePiece: with parse_special, text after a special token gets its own dummy
// prefix, as Hugging Face's Prepend normalizer (run per segment) and llama.cpp do.
TEST(TokenizerSpecial, SentencePieceSegmentsAfterSpecialTokensGetThePrefix) {
  const Tokenizer t(load_hf_tokenizer(test::shared_dir() / "tokenizers/llama2"));
  const auto hi = t.encode("hi", false, false);
  const auto nl = t.encode("\nyou", false, false);
  EXPECT_EQ(t.encode("hi</s>hi", false, true), concat({hi, {2}, hi}));
  EXPECT_EQ(t.encode("<s>hi", false, true), concat({{1}, hi}));
  EXPECT_EQ(t.encode("</s>\nyou", false, true), concat({{2}, nl}));
  // <unk> is special text as well (llama.cpp's llama-tokenize --ids on this vocabulary's
  // GGUF gives these ids; Hugging Face lists <unk> among the special tokens).
  EXPECT_EQ(t.encode("text <unk>", false, true), (std::vector<int32_t>{1426, 29871, 0}));
  EXPECT_EQ(t.encode("text <s>", false, true), (std::vector<int32_t>{1426, 29871, 1}));
  // Without parse_special the same text is plain text.
  const auto plain = t.encode("hi</s>hi", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 2), 0);
  EXPECT_EQ(t.decode(plain), "hi</s>hi");
}

TEST(TokenizerSpecial, ByteLevelSpecialsAndEos) {
  const Tokenizer q(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));
  const auto ids = q.encode("<|im_start|>user\nhi<|im_end|>", false, true);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(q.piece(ids.front()), "<|im_start|>");
  EXPECT_EQ(q.piece(ids.back()), "<|im_end|>");
  EXPECT_TRUE(q.is_eos(ids.back()));
  EXPECT_EQ(q.bos_id(), -1);  // Qwen declares no BOS
  EXPECT_EQ(q.encode("hi", true, false), q.encode("hi", false, false));
  EXPECT_EQ(q.decode(ids, true), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(q.decode(ids, false), "user\nhi");
}

TEST(TokenizerSpecial, SentencePieceConfigFromTokenizerConfig) {
  const Tokenizer s(load_hf_tokenizer(test::stories_dir()));
  EXPECT_EQ(s.vocab_size(), 512);
  EXPECT_EQ(s.bos_id(), 1);
  EXPECT_TRUE(s.is_eos(2));
  EXPECT_EQ(s.kind_name(), "sentencepiece-bpe");
  EXPECT_EQ(s.encode("Once", true, false).front(), 1);
}

// Every prefix of a real tokenizer.model either loads or throws qrun::Error naming
// the file; random byte corruption likewise, and whatever loads still encodes.
TEST(TokenizerRobustness, CorruptTokenizerModelNeverCrashes) {
  const auto good = test::read_bytes(test::stories_dir() / "tokenizer.model");
  ASSERT_FALSE(good.empty());
  test::ScratchDir dir;
  const auto path = dir / "tokenizer.model";
  auto try_load = [&](const std::vector<uint8_t>& bytes) {
    test::write_bytes(path, bytes);
    try {
      const Tokenizer t(load_hf_tokenizer(dir.path()));
      const auto ids = t.encode("Once upon a time, \xF0\x9F\x98\x80 \xFF!", true, true);
      (void)t.decode(ids);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
    }
  };
  for (size_t cut = 0; cut < good.size(); cut += 13) try_load({good.begin(), good.begin() + std::ptrdiff_t(cut)});
  std::mt19937 rng(11);
  for (int round = 0; round < 300; ++round) {
    auto bad = good;
    for (int k = 0; k < 4; ++k) bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    try_load(bad);
  }
}

TEST(TokenizerRobustness, CorruptBlobNeverCrashes) {
  const auto blob = serialize_tokenizer(*load_hf_tokenizer(test::stories_dir()));
  std::mt19937 rng(7);
  for (int round = 0; round < 500; ++round) {
    auto bad = blob;
    for (int k = 0; k < 3; ++k) bad[rng() % bad.size()] = static_cast<uint8_t>(rng());
    try {
      const Tokenizer t(deserialize_tokenizer(bad, "m.qrun", 100));
      const auto ids = t.encode("Once upon a time \xE6\x97", true, true);
      (void)t.decode(ids, true);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("m.qrun"), std::string::npos) << e.what();
    }
  }
}

// Tokenizer configurations qrun cannot reproduce exactly are refused, naming what.
TEST(TokenizerRobustness, UnsupportedTokenizerJsonIsNamed) {
  test::ScratchDir dir;
  test::write_text(dir / "tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  try {
    load_hf_tokenizer(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("WordPiece"), std::string::npos) << e.what();
  }
  // A pre-tokenizer stage qrun does not run would silently change ids: refused.
  test::write_text(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
      "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Punctuation"},
                        {"type": "ByteLevel", "add_prefix_space": false}]}})");
  try {
    load_hf_tokenizer(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json: pre-tokenizer 'Punctuation' is not supported"), std::string::npos)
        << e.what();
  }
  // Digits only as StarCoder and Granite use it: individual digits, then GPT-2's split.
  for (const char* pre : {R"([{"type": "Digits", "individual_digits": false}, {"type": "ByteLevel"}])",
                          R"([{"type": "ByteLevel"}, {"type": "Digits", "individual_digits": true}])",
                          R"([{"type": "Digits", "individual_digits": true}])"}) {
    test::write_text(dir / "tokenizer.json", std::string(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": )") + pre + "}}");
    EXPECT_THROW(load_hf_tokenizer(dir.path()), Error) << pre;
  }
}

// StarCoder's and Granite 3's pre-tokenizer: Digits (individual) then ByteLevel. Hugging
// Face splits every digit off first and runs GPT-2's pattern on the text between, so
// merges never join digits, and spaces before a digit end their piece whole ("a  1" is
// "a", "  ", "1": neither GPT-2's pattern alone, "a", " ", " 1", nor a pass that only
// isolates digits, "a", " ", " ", "1"). The ids below are worked out by hand from that.
TEST(TokenizerRobustness, DigitsThenByteLevelSplitsAsHuggingFace) {
  test::ScratchDir dir;
  const nlohmann::json tok = {
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}},
                         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}}},
      {"model", {{"type", "BPE"},
                 {"vocab", {{"a", 0}, {"\xC4\xA0", 1}, {"\xC4\xA0\xC4\xA0", 2}, {"1", 3}, {"2", 4}, {"12", 5},
                            {"\xC4\xA0" "1", 6}}},
                 {"merges", {"\xC4\xA0 \xC4\xA0", "1 2", "\xC4\xA0 1"}}}}};
  test::write_text(dir / "tokenizer.json", tok.dump());
  const Tokenizer t(load_hf_tokenizer(dir.path()));
  EXPECT_EQ(t.encode("a  1", false, false), (std::vector<int32_t>{0, 2, 3}));
  EXPECT_EQ(t.encode("12", false, false), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(t.encode("a 12a", false, false), (std::vector<int32_t>{0, 1, 3, 4, 0}));
  EXPECT_EQ(t.encode("a  a", false, false), (std::vector<int32_t>{0, 1, 1, 0}));  // no digit: GPT-2's split
}

// ---------------------------------------------------------------- qtok

std::string qtok() { return (test::bin_dir() / "qtok").string(); }

TEST(Qtok, PrintsIdsPiecesAndDecodes) {
  const std::string dir = (test::shared_dir() / "tokenizers/llama3").string();
  const Tokenizer t(load_hf_tokenizer(dir));
  const auto want = t.encode("Hello world", false, false);
  std::string line;
  for (size_t i = 0; i < want.size(); ++i) line += (i ? " " : "") + std::to_string(want[i]);
  auto r = test::run_command(qtok() + " --tokenizer " + test::quoted(dir) + " -p 'Hello world'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, line + "\n");
  r = test::run_command(qtok() + " --tokenizer " + test::quoted(dir) + " -p 'Hello world' --pieces");
  EXPECT_NE(r.out.find("\xC4\xA0world"), std::string::npos) << r.out;  // "Ġworld"
  r = test::run_command(qtok() + " --tokenizer " + test::quoted(dir) + " --decode -p " + test::quoted(line));
  EXPECT_EQ(r.out, "Hello world\n");
  r = test::run_command(qtok() + " --tokenizer " + test::quoted(dir) + " --add-special -p hi");
  EXPECT_EQ(r.out.substr(0, r.out.find(' ')), std::to_string(t.bos_id()));
}

TEST(Qtok, JsonlMatchesGolden) {
  const std::string dir = (test::shared_dir() / "tokenizers/qwen3").string();
  const std::string golden = (test::shared_dir() / "golden/tokenize/qwen3.jsonl").string();
  const auto r = test::run_command(qtok() + " --tokenizer " + test::quoted(dir) + " --special --jsonl < " +
                                   test::quoted(golden) + " | head -n 20");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::istringstream got(r.out);
  std::ifstream want(golden);
  std::string g, w;
  int lines = 0;
  while (std::getline(got, g) && std::getline(want, w)) {
    const auto wj = nlohmann::json::parse(w);
    EXPECT_EQ(nlohmann::json::parse(g)["ids"], wj["ids"]) << wj["text"];
    ++lines;
  }
  EXPECT_EQ(lines, 20);
}

TEST(Qtok, BadInputFailsWithAMessage) {
  const std::string dir = (test::shared_dir() / "tokenizers/llama2").string();
  auto r = test::run_command(qtok() + " --tokenizer " + test::quoted(dir) + " --decode -p '12 x'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("not a token id"), std::string::npos) << r.out;
  r = test::run_command(qtok() + " --tokenizer /nonexistent -p hi");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("/nonexistent"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace qrun

namespace qrun {
namespace {

// llama2's tokenizer.model as a tokenizer.json with the given normalizer and
// pre-tokenizer, built the way transformers' SentencePiece converter does: BPE with
// byte_fallback, every split of a piece into two pieces a merge, ranked by the merged
// piece's score.
nlohmann::json llama2_as_tokenizer_json(const TokenizerData& d, const nlohmann::json& normalizer,
                                        const nlohmann::json& pre_tokenizer) {
  nlohmann::json vocab = nlohmann::json::object(), merges = nlohmann::json::array(), added = nlohmann::json::array();
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < d.pieces.size(); ++i) {
    vocab[d.pieces[i]] = i;
    ids.emplace(d.pieces[i], static_cast<int32_t>(i));
    if (d.types[i] == PieceType::Control || d.types[i] == PieceType::Unknown)
      added.push_back({{"id", i}, {"content", d.pieces[i]}, {"special", true}});
  }
  struct Merge { float score; int32_t piece, left, right; };
  std::vector<Merge> all;
  for (size_t i = 0; i < d.pieces.size(); ++i) {
    if (d.types[i] != PieceType::Normal) continue;
    const std::string& p = d.pieces[i];
    std::vector<Merge> local;
    for (size_t k = 1; k < p.size(); ++k) {
      if ((static_cast<uint8_t>(p[k]) & 0xC0) == 0x80) continue;  // inside a character
      auto l = ids.find(p.substr(0, k)), r = ids.find(p.substr(k));
      if (l != ids.end() && r != ids.end()) local.push_back({d.scores[i], static_cast<int32_t>(i), l->second, r->second});
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
    all.insert(all.end(), local.begin(), local.end());
  }
  std::stable_sort(all.begin(), all.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  for (const Merge& m : all) merges.push_back(d.pieces[size_t(m.left)] + " " + d.pieces[size_t(m.right)]);
  return {{"added_tokens", added},
          {"normalizer", normalizer},
          {"pre_tokenizer", pre_tokenizer},
          {"model", {{"type", "BPE"}, {"byte_fallback", true}, {"unk_token", "<unk>"}, {"vocab", vocab}, {"merges", merges}}}};
}

const nlohmann::json kSpacesToMetaspace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}};

// A Llama-2-style tokenizer.json (normalizer Prepend "\xE2\x96\x81" + Replace " " -> "\xE2\x96\x81") must
// encode the golden llama2 texts exactly as the tokenizer.model does.
TEST(TokenizerJson, SentencePieceStyleBpeMatchesTheModelFile) {
  const Tokenizer spm(load_hf_tokenizer(test::shared_dir() / "tokenizers/llama2"));
  const nlohmann::json normalizer = {
      {"type", "Sequence"},
      {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}}, kSpacesToMetaspace}}};
  const nlohmann::json j = llama2_as_tokenizer_json(spm.data(), normalizer, nullptr);
  test::ScratchDir dir;
  test::write_text(dir / "tokenizer.json", j.dump());
  test::write_text(dir / "tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true})");
  const Tokenizer hf(load_hf_tokenizer(dir.path()));
  EXPECT_EQ(hf.kind_name(), "sentencepiece-bpe");
  std::ifstream in(test::shared_dir() / "golden/tokenize/llama2.jsonl");
  int cases = 0;
  for (std::string line; std::getline(in, line); ++cases) {
    const auto g = nlohmann::json::parse(line);
    EXPECT_EQ(hf.encode(g["text"].get<std::string>(), false, false), g["ids"].get<std::vector<int32_t>>())
        << g["text"];
  }
  EXPECT_EQ(cases, 75);
  EXPECT_EQ(hf.encode("hi</s>hi", true, true), spm.encode("hi</s>hi", true, true));
  EXPECT_EQ(hf.decode(hf.encode(" a  b\n\xE6\x97\xA5", false, false)), " a  b\n\xE6\x97\xA5");
}

// Gemma's tokenizer.json (transformers' GemmaConverter): spaces replaced, no prefix, and
// a Split pre-tokenizer on " " that finds no space left. With llama2's vocabulary it
// encodes " " + text as the llama2 model, which adds "\xE2\x96\x81" in front, encodes text.
TEST(TokenizerJson, GemmaStyleSplitOnSpaceAfterTheReplaceIsANoOp) {
  const Tokenizer spm(load_hf_tokenizer(test::shared_dir() / "tokenizers/llama2"));
  const nlohmann::json split = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "MergedWithPrevious"},
                                {"invert", false}};
  test::ScratchDir dir;
  test::write_text(dir / "tokenizer.json", llama2_as_tokenizer_json(spm.data(), kSpacesToMetaspace, split).dump());
  const Tokenizer gemma_style(load_hf_tokenizer(dir.path()));
  for (const std::string text : {"Hello world", " two  spaces", "end with space ", "a\tb\nc", "\xE6\x97\xA5 \xF0\x9F\x98\x80 x"})
    EXPECT_EQ(gemma_style.encode(" " + text, false, false), spm.encode(text, false, false)) << text;
  // Without the Replace the split would matter: refused, not silently ignored.
  test::write_text(dir / "tokenizer.json", llama2_as_tokenizer_json(spm.data(), nullptr, split).dump());
  EXPECT_THROW(load_hf_tokenizer(dir.path()), Error);
}

}  // namespace
}  // namespace qrun

namespace qrun {
namespace {

// SentencePiece's remove_extra_whitespaces (on by default, off in Llama's models):
// stories260K's tokenizer.model with the flag flipped on.
TEST(TokenizerNormalizer, RemoveExtraWhitespacesCollapsesSpaces) {
  auto bytes = test::read_bytes(test::stories_dir() / "tokenizer.model");
  const std::string needle = std::string("identity\x18\x01\x20\x00", 12);
  auto at = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  ASSERT_NE(at, bytes.end());
  at[11] = 1;
  test::ScratchDir dir;
  test::write_bytes(dir / "tokenizer.model", bytes);
  const Tokenizer plain(load_hf_tokenizer(test::stories_dir()));
  const Tokenizer collapsing(load_hf_tokenizer(dir.path()));
  EXPECT_EQ(collapsing.encode("   Once  upon   a time  ", false, false), plain.encode("Once upon a time", false, false));
  EXPECT_TRUE(collapsing.encode("    ", false, false).empty());
  EXPECT_NE(plain.encode("  Once", false, false), plain.encode("Once", false, false));
  // The flag survives the model-file encoding.
  const Tokenizer stored(deserialize_tokenizer(serialize_tokenizer(collapsing.data()), "m", 0));
  EXPECT_EQ(stored.encode(" a  b ", false, false), collapsing.encode("a b", false, false));
}

// Qwen2 normalizes to NFC; invalid bytes are kept raw and do not stop the normalization
// of the valid text around them (nor does a NUL byte end the text).
TEST(TokenizerNormalizer, NfcAroundInvalidBytes) {
  const Tokenizer q(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));
  const std::string decomposed = "cafe\xCC\x81 \xFF na\xC3\xAFve e\xCC\x81";
  const std::string composed = "caf\xC3\xA9 \xFF na\xC3\xAFve \xC3\xA9";
  EXPECT_EQ(q.encode(decomposed, false, false), q.encode(composed, false, false));
  EXPECT_EQ(q.decode(q.encode(decomposed, false, false)), composed);
  const std::string with_nul("a\0e\xCC\x81", 5);
  EXPECT_EQ(q.decode(q.encode(with_nul, false, false)), std::string("a\0\xC3\xA9", 4));
}

}  // namespace
}  // namespace qrun

namespace qrun {
namespace {

// The chat template may sit in its own file: chat_template.jinja (transformers' newer
// layout, taken over tokenizer_config.json's as transformers does) or a multimodal
// processor's chat_template.json (Gemma 3), read when tokenizer_config.json has none.
TEST(TokenizerConfig, ChatTemplateFiles) {
  test::ScratchDir dir;
  std::filesystem::copy_file(test::stories_dir() / "tokenizer.model", dir / "tokenizer.model");
  test::write_text(dir / "chat_template.json", R"({"chat_template": "{{ 'from json' }}"})");
  EXPECT_EQ(Tokenizer(load_hf_tokenizer(dir.path())).chat_template(), "{{ 'from json' }}");
  test::write_text(dir / "tokenizer_config.json", R"({"chat_template": "{{ 'from config' }}"})");
  EXPECT_EQ(Tokenizer(load_hf_tokenizer(dir.path())).chat_template(), "{{ 'from config' }}");
  test::write_text(dir / "chat_template.jinja", "{{ 'from jinja' }}\n");
  EXPECT_EQ(Tokenizer(load_hf_tokenizer(dir.path())).chat_template(), "{{ 'from jinja' }}\n");
  std::filesystem::remove(dir / "chat_template.jinja");
  // A broken file is an error naming it, whichever template wins.
  auto error_of = [&] {
    try {
      load_hf_tokenizer(dir.path());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  test::write_text(dir / "chat_template.json", R"({"chat_template": 7})");
  EXPECT_NE(error_of().find("chat_template.json: no \"chat_template\" string"), std::string::npos) << error_of();
  test::write_text(dir / "chat_template.json", "{bad");
  EXPECT_NE(error_of().find("chat_template.json: malformed JSON"), std::string::npos) << error_of();
  std::filesystem::remove(dir / "chat_template.json");
  std::filesystem::create_directory(dir / "chat_template.jinja");
  EXPECT_NE(error_of().find("chat_template.jinja: cannot read"), std::string::npos) << error_of();
}

// eos_token_id may be a list (end-of-turn ids) in generation_config.json / config.json.
TEST(TokenizerConfig, EosListFromGenerationConfig) {
  test::ScratchDir dir;
  std::filesystem::copy_file(test::stories_dir() / "tokenizer.model", dir / "tokenizer.model");
  test::write_text(dir / "tokenizer_config.json", R"({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false,
                                                      "add_eos_token": true, "chat_template": "{{ bos_token }}"})");
  test::write_text(dir / "generation_config.json", R"({"eos_token_id": [2, 7, 9999]})");
  test::write_text(dir / "config.json", R"({"eos_token_id": 8})");
  const Tokenizer t(load_hf_tokenizer(dir.path()));
  EXPECT_EQ(t.eos_ids(), (std::vector<int32_t>{2, 7, 8}));  // 9999 is outside the vocabulary
  EXPECT_TRUE(t.is_eos(7));
  EXPECT_FALSE(t.is_eos(3));
  EXPECT_EQ(t.chat_template(), "{{ bos_token }}");
  const auto ids = t.encode("Once", true, false);
  EXPECT_NE(ids.front(), 1);  // add_bos_token false
  EXPECT_EQ(ids.back(), 2);   // add_eos_token true
  const Tokenizer stored(deserialize_tokenizer(serialize_tokenizer(t.data()), "m", 0));
  EXPECT_EQ(stored.eos_ids(), t.eos_ids());
  EXPECT_EQ(stored.encode("Once", true, false), ids);
  EXPECT_EQ(stored.chat_template(), "{{ bos_token }}");
}

}  // namespace
}  // namespace qrun

namespace qrun {
namespace {

// Structural corruption of tokenizer.json / tokenizer_config.json: any node replaced by
// a value of another type. Loading either works or throws qrun::Error naming the file.
TEST(TokenizerRobustness, CorruptJsonNeverCrashes) {
  nlohmann::json vocab = nlohmann::json::object();
  const char* pieces[] = {"a", "b", "c", "ab", "abc", "\xC4\xA0", "\xC4\xA0" "a"};
  for (int i = 0; i < 7; ++i) vocab[pieces[i]] = i;
  const nlohmann::json good_tok = {
      {"added_tokens", {{{"id", 7}, {"content", "<|end|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", "\\s?\\w+|\\s+"}}},
                         {"behavior", "Isolated"}, {"invert", false}}, {{"type", "ByteLevel"}, {"use_regex", false}}}}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "ab c", "\xC4\xA0 a"}}}}};
  const nlohmann::json good_cfg = {{"eos_token", "<|end|>"}, {"bos_token", nullptr}, {"chat_template", "x"}};
  test::ScratchDir dir;
  auto paths = [](const nlohmann::json& j) {
    std::vector<nlohmann::json::json_pointer> out;
    std::function<void(const nlohmann::json&, const nlohmann::json::json_pointer&)> walk = [&](const auto& n, const auto& at) {
      out.push_back(at);
      if (n.is_object()) for (const auto& [k, v] : n.items()) walk(v, at / k);
      if (n.is_array()) for (size_t k = 0; k < n.size(); ++k) walk(n[k], at / k);
    };
    walk(j, nlohmann::json::json_pointer());
    return out;
  };
  const auto tok_paths = paths(good_tok), cfg_paths = paths(good_cfg);
  const nlohmann::json replacements[] = {-1, "x", nullptr, nlohmann::json::array(), nlohmann::json::object(), 1e30, true,
                                         5000000, "a b c"};
  test::write_text(dir / "tokenizer.json", good_tok.dump());
  test::write_text(dir / "tokenizer_config.json", good_cfg.dump());
  {
    const Tokenizer t(load_hf_tokenizer(dir.path()));  // the uncorrupted files work
    EXPECT_EQ(t.encode("abc a<|end|>", false, true), (std::vector<int32_t>{4, 6, 7}));
    EXPECT_TRUE(t.is_eos(7));
  }
  std::mt19937 rng(3);
  for (int round = 0; round < 400; ++round) {
    nlohmann::json tok = good_tok, cfg = good_cfg;
    const bool in_cfg = round % 4 == 0;
    auto& target = in_cfg ? cfg : tok;
    const auto& ps = in_cfg ? cfg_paths : tok_paths;
    target[ps[rng() % ps.size()]] = replacements[rng() % std::size(replacements)];
    test::write_text(dir / "tokenizer.json", tok.dump());
    test::write_text(dir / "tokenizer_config.json", cfg.dump());
    try {
      const Tokenizer t(load_hf_tokenizer(dir.path()));
      (void)t.decode(t.encode(" abc ab<|end|> \xFF", true, true), true);
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_TRUE(what.find("tokenizer.json") != std::string::npos || what.find("tokenizer_config.json") != std::string::npos ||
                  what.find("regex") != std::string::npos)
          << what;
    }
  }
}

}  // namespace
}  // namespace qrun
