// Hard cases, round trips, the embedded encoding and streaming decode.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "common/test_paths.h"
#include "qrun/error.h"
#include "qrun/tokenizer.h"

#include <nlohmann/json.hpp>

namespace qrun {
namespace {

const Tokenizer& llama2() {
  static const Tokenizer t(load_hf_tokenizer(test::shared_dir() / "tokenizers/llama2"));
  return t;
}
const Tokenizer& llama3() {
  static const Tokenizer t(load_hf_tokenizer(test::shared_dir() / "tokenizers/llama3"));
  return t;
}

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k)
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

const char* kHard[] = {"", " ", "   ", "\n", "\t\t x", "  leading", "trailing  ", "a  b   c", "1234567890",
                       "日本語のテキスト", "مرحبا بالعالم", "👨‍👩‍👧‍👦 family", "e\xCC\x81 combining",
                       "int main() { return 0; }\n", "Hello, world! It's 2024."};

// Decoding what was encoded gives the text back (valid UTF-8 input, no specials).
TEST(Tokenizer, RoundTripsHardStrings) {
  for (const Tokenizer* t : {&llama2(), &llama3()}) {
    for (const char* s : kHard) {
      const auto ids = t->encode(s, false, false);
      EXPECT_EQ(t->decode(ids), s) << t->kind_name() << ": '" << s << "'";
    }
  }
}

TEST(Tokenizer, BosIsAddedAsConfigured) {
  EXPECT_EQ(llama2().encode("hi", true, false).front(), llama2().bos_id());
  EXPECT_EQ(llama3().encode("hi", true, false).front(), llama3().bos_id());
  EXPECT_TRUE(llama2().encode("", false, false).empty());
}

TEST(Tokenizer, SpecialTextIsSpecialOnlyWhenAsked) {
  const std::string text = "<|begin_of_text|>hi";
  const auto plain = llama3().encode(text, false, false);
  const auto special = llama3().encode(text, false, true);
  EXPECT_EQ(special.front(), llama3().bos_id());
  EXPECT_GT(plain.size(), special.size());
  EXPECT_NE(plain.front(), llama3().bos_id());
}

// Invalid UTF-8 never crashes; each invalid byte becomes its byte token, so
// decoding gives the same bytes back.
TEST(Tokenizer, InvalidUtf8IsEncodedByteForByte) {
  const std::string bad = "ok \xFF\xFE broken \xE6\x97 tail \xC0";
  static const Tokenizer qwen3(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));  // NFC path
  for (const Tokenizer* t : {&llama2(), &llama3(), &qwen3}) {
    const auto ids = t->encode(bad, false, false);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(t->decode(ids), bad) << t->kind_name();
  }
}

// A megabyte without spaces: the merge loop must not be quadratic. The bound is
// generous (O(n^2) would take minutes); it guards the algorithm, not the machine.
TEST(Tokenizer, LongInputsFinish) {
  std::string big;
  std::mt19937 rng(5);
  while (big.size() < (1 << 20)) big += static_cast<char>('a' + rng() % 26);
  for (const Tokenizer* t : {&llama2(), &llama3()}) {
    const auto ids = t->encode(big, false, false);
    EXPECT_GT(ids.size(), big.size() / 20);
    EXPECT_EQ(t->decode(ids), big);
  }
}

TEST(Tokenizer, SerializedFormEncodesIdentically) {
  for (const char* dir : {"tokenizers/llama2", "tokenizers/llama3", "tokenizers/qwen3", "models/stories260K"}) {
    const auto data = load_hf_tokenizer(test::shared_dir() / dir);
    const auto blob = serialize_tokenizer(*data);
    const Tokenizer a(data), b(deserialize_tokenizer(blob, "blob", 0));
    EXPECT_EQ(a.vocab_size(), b.vocab_size());
    EXPECT_EQ(a.chat_template(), b.chat_template());
    EXPECT_EQ(a.eos_ids(), b.eos_ids());
    for (const char* s : kHard) EXPECT_EQ(a.encode(s, true, true), b.encode(s, true, true)) << dir << ": " << s;
  }
}

TEST(Tokenizer, CorruptBlobsAreRefused) {
  const auto blob = serialize_tokenizer(*load_hf_tokenizer(test::shared_dir() / "models/stories260K"));
  // Every truncation point fails cleanly.
  for (size_t cut = 0; cut < blob.size(); cut += 97) {
    EXPECT_THROW(deserialize_tokenizer(std::span(blob.data(), cut), "model.q4", 4096), Error) << cut;
  }
  auto bad = blob;
  bad[0] = 'X';
  try {
    deserialize_tokenizer(bad, "model.q4", 4096);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.q4: at offset"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad magic"), std::string::npos);
  }
  // A vocabulary count that claims more than the blob holds.
  bad = blob;
  bad[24] = 0xFF, bad[25] = 0xFF, bad[26] = 0xFF, bad[27] = 0x7F;
  EXPECT_THROW(deserialize_tokenizer(bad, "model.q4", 0), Error);
}

TEST(Tokenizer, MissingOrBrokenFilesNameTheFile) {
  test::ScratchDir dir;
  try {
    load_hf_tokenizer(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer"), std::string::npos);
  }
  test::write_text(dir / "tokenizer.json", "{\"model\": ");
  try {
    load_hf_tokenizer(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json: malformed JSON"), std::string::npos) << e.what();
  }
  std::filesystem::remove(dir / "tokenizer.json");
  test::write_bytes(dir / "tokenizer.model", {0x0A, 0xFF, 0xFF, 0x03});
  try {
    load_hf_tokenizer(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
  }
}

// Streaming: an emoji split over byte tokens comes out whole, never half.
TEST(StreamingDecoder, HoldsIncompleteCharacters) {
  for (const Tokenizer* t : {&llama2(), &llama3()}) {
    const std::string text = "a 😀 b 日本 c";
    const auto ids = t->encode(text, false, false);
    StreamingDecoder dec(*t, true);
    std::string out;
    for (int32_t id : ids) {
      const std::string part = dec.push(id);
      EXPECT_TRUE(valid_utf8(part)) << t->kind_name();
      out += part;
    }
    out += dec.flush();
    EXPECT_EQ(out, text) << t->kind_name();
  }
}

// A continuation after a prompt keeps the space its first piece starts with: "Hello" then
// "▁world" (SentencePiece) or "Ġworld" (byte-level) streams as " world", while the same
// piece at the start of a text loses SentencePiece's dummy-prefix space.
// Qwen3-Embedding's tokenizer.json appends <|endoftext|> in its post-processor (its
// last-token pooling reads that token's state) while tokenizer_config.json's EOS is
// <|im_end|>: encode appends the former, and both still end a generation.
TEST(HfTokenizer, PostProcessorsLastSpecialTokenIsAppended) {
  test::ScratchDir dir;
  const auto src = test::shared_dir() / "tokenizers/qwen3";
  nlohmann::json j = nlohmann::json::parse(test::read_text(src / "tokenizer.json"));
  j["post_processor"] = {
      {"type", "Sequence"},
      {"processors",
       {{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}},
        {{"type", "TemplateProcessing"},
         {"single", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, {{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}}}},
         {"special_tokens", {{"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {151643}}, {"tokens", {"<|endoftext|>"}}}}}}}}}};
  test::write_text(dir / "tokenizer.json", j.dump());
  test::write_text(dir / "tokenizer_config.json", test::read_text(src / "tokenizer_config.json"));
  const Tokenizer plain(load_hf_tokenizer(src)), embedding(load_hf_tokenizer(dir.path()));
  std::vector<int32_t> want = plain.encode("What is the capital of China?", true, false);
  want.push_back(151643);
  EXPECT_EQ(embedding.encode("What is the capital of China?", true, false), want);
  EXPECT_EQ(embedding.encode("What is the capital of China?", false, false), plain.encode("What is the capital of China?", false, false));
  EXPECT_TRUE(embedding.is_eos(151643));
  EXPECT_TRUE(embedding.is_eos(151645));  // <|im_end|>
  EXPECT_EQ(plain.encode("x", true, false).size(), 1u);  // the plain one appends nothing
}

TEST(StreamingDecoder, ContinuationKeepsItsLeadingSpace) {
  for (const Tokenizer* t : {&llama2(), &llama3()}) {
    const auto ids = t->encode("Hello world, and more", false, false);
    ASSERT_GE(ids.size(), 3u);
    StreamingDecoder after_prompt(*t, /*at_text_start=*/false);
    std::string text;
    for (size_t i = 1; i < ids.size(); ++i) text += after_prompt.push(ids[i]);
    text += after_prompt.flush();
    EXPECT_EQ(text, " world, and more") << t->kind_name();
    EXPECT_EQ(t->decode(ids), t->decode(std::span(ids).first(1)) + text) << t->kind_name();
  }
  StreamingDecoder at_start(llama2(), /*at_text_start=*/true);
  EXPECT_EQ(at_start.push(llama2().encode("Hello", false, false).front()), "Hello");
}

// A special token's text is left out of a reply unless the decoder keeps it (a tool
// call's markers), on Qwen3's <|im_start|>.
TEST(StreamingDecoder, KeepsTheTextOfTheSpecialTokensItIsGiven) {
  const Tokenizer qwen(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));
  const std::vector<int32_t> ids = qwen.encode("a<|im_start|>b", false, true);
  ASSERT_EQ(ids.size(), 3u);
  ASSERT_EQ(qwen.token_text(ids[1], false), "");
  StreamingDecoder plain(qwen, false), keeping(qwen, false, {ids[1]});
  std::string dropped, kept;
  for (const int32_t id : ids) dropped += plain.push(id), kept += keeping.push(id);
  EXPECT_EQ(dropped, "ab");
  EXPECT_EQ(kept, "a<|im_start|>b");
}

TEST(StreamingDecoder, ReplacesBytesThatCannotComplete) {
  const Tokenizer& t = llama2();
  StreamingDecoder dec(t, true);
  const auto ff = t.encode("\xFF", false, false);  // a lone invalid byte token (after the prefix)
  std::string out;
  for (int32_t id : ff) out += dec.push(id);
  out += dec.flush();
  EXPECT_TRUE(valid_utf8(out));
  EXPECT_NE(out.find("\xEF\xBF\xBD"), std::string::npos);
}

}  // namespace
}  // namespace qrun

namespace qrun {
namespace {

// Byte tokens of one 4-byte character, pushed one at a time: nothing comes out until
// the last byte completes the character.
TEST(StreamingDecoder, ByteTokensOfOneCharacter) {
  const Tokenizer& t = llama2();
  auto byte_token = [&](int b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    for (int32_t id = 0; id < t.vocab_size(); ++id)
      if (t.piece(id) == name) return id;
    return -1;
  };
  StreamingDecoder dec(t, true);
  EXPECT_EQ(dec.push(t.encode("hi", false, false).front()), "hi");  // "▁hi": the leading space goes
  EXPECT_EQ(dec.push(byte_token(0xF0)), "");
  EXPECT_EQ(dec.push(byte_token(0x9F)), "");
  EXPECT_EQ(dec.push(byte_token(0x98)), "");
  EXPECT_EQ(dec.push(byte_token(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(dec.flush(), "");
  // A character cut short by a complete one: the held bytes become U+FFFD.
  EXPECT_EQ(dec.push(byte_token(0xE6)), "");
  EXPECT_EQ(dec.push(t.encode("a", false, false).back()), "\xEF\xBF\xBD a");
}

}  // namespace
}  // namespace qrun
