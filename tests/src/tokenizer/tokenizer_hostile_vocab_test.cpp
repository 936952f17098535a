// Vocabularies and callers the security review (issue 15) found broken: a byte piece
// that spells no byte, a piece with "▁" inside a word, and one tokenizer shared by
// several threads. Each reproducer is kept here.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <fstream>
#include <cstring>
#include <functional>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/model_fixture.h"
#include "common/param_name.h"
#include "common/run_command.h"
#include "common/test_paths.h"
#include "qrun/error.h"
#include "qrun/format.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

std::string tool(const char* name) { return (test::bin_dir() / name).string(); }

// Replaces the first `from` after byte `start` with `to` (same length).
void replace_once(std::vector<uint8_t>& bytes, std::string_view from, std::string_view to, size_t start = 0) {
  ASSERT_EQ(from.size(), to.size());
  const auto at = std::search(bytes.begin() + std::ptrdiff_t(start), bytes.end(), from.begin(), from.end(),
                              [](uint8_t a, char b) { return a == static_cast<uint8_t>(b); });
  ASSERT_NE(at, bytes.end()) << from;
  std::copy(to.begin(), to.end(), at);
}

// A copy of stories260K's tokenizer.model with one piece respelled in place.
fs::path respelled_tokenizer(const test::ScratchDir& dir, std::string_view from, std::string_view to) {
  auto bytes = test::read_bytes(test::stories_dir() / "tokenizer.model");
  replace_once(bytes, from, to);
  test::write_bytes(dir / "tokenizer.model", bytes);
  return dir.path();
}

// A copy of a converted model file whose embedded tokenizer has `from` respelled `to`,
// with the metadata checksum redone so that the file loads up to the tokenizer.
fs::path model_with_respelled_piece(const test::ScratchDir& dir, std::string_view from, std::string_view to) {
  auto bytes = test::read_bytes(test::converted_stories(DType::Q8));
  format::FileHeader h;
  std::memcpy(&h, bytes.data(), sizeof h);
  replace_once(bytes, from, to, h.tokenizer_offset);
  h.meta_checksum = XXH3_64bits(bytes.data() + sizeof h, h.data_offset - sizeof h);
  std::memcpy(bytes.data(), &h, sizeof h);
  const fs::path out = dir / "patched.q8";
  test::write_bytes(out, bytes);
  return out;
}

std::string load_error(const std::function<void()>& load) {
  try {
    load();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------- byte pieces

// "<0x-3>" was read by sscanf("%2X") as 4294967293 and written into a 256-entry table;
// qconvert embedded it and qrun/qtok then crashed. SentencePiece refuses such a piece
// ("Invalid byte piece"), and so does every reader here, naming file and piece.
TEST(TokenizerBytePieces, MalformedBytePieceIsRefusedByEveryReader) {
  for (const char* bad : {"<0x-3>", "<0x+3>", "<0x 3>", "<0xG1>", "<0x4a>"}) {
    SCOPED_TRACE(bad);
    test::ScratchDir dir;
    const fs::path hf = respelled_tokenizer(dir, "<0x41>", bad);
    std::string e = load_error([&] { load_hf_tokenizer(hf); });
    EXPECT_NE(e.find("tokenizer.model"), std::string::npos) << e;
    EXPECT_NE(e.find(std::string("byte piece 68 '") + bad + "' is not of the form <0xHH>"), std::string::npos) << e;

    // A model file written before the fix (or by anyone else) holding such a piece.
    const Tokenizer good(load_hf_tokenizer(test::stories_dir()));
    auto data = std::make_shared<TokenizerData>(good.data());
    data->pieces[68] = bad;
    e = load_error([&] { deserialize_tokenizer(serialize_tokenizer(*data), "m.qrun", 100); });
    EXPECT_NE(e.find("m.qrun: at offset 100: tokenizer: byte piece 68"), std::string::npos) << e;
    e = load_error([&] { Tokenizer t(data); });
    EXPECT_NE(e.find("byte piece 68"), std::string::npos) << e;
  }
}

// The same in a tokenizer.json: there "<0x-3>" is not a byte piece at all (Hugging Face
// looks up exactly "<0x{:02X}>"), just an ordinary one.
TEST(TokenizerBytePieces, TokenizerJsonSpellingThatIsNoBytePieceIsOrdinary) {
  nlohmann::json vocab = {{"<unk>", 0}, {"<0x-3>", 1}, {"<0x41>", 2}, {"b", 3}, {"\xE2\x96\x81", 4}};
  test::ScratchDir dir;
  test::write_text(dir / "tokenizer.json",
                   nlohmann::json{{"model", {{"type", "BPE"}, {"byte_fallback", true}, {"unk_token", "<unk>"},
                                             {"vocab", vocab}, {"merges", nlohmann::json::array()}}}}
                       .dump());
  const Tokenizer t(load_hf_tokenizer(dir.path()));
  EXPECT_EQ(t.data().types[1], PieceType::Normal);
  EXPECT_EQ(t.data().types[2], PieceType::Byte);
  EXPECT_EQ(t.encode("Ab", false, false), (std::vector<int32_t>{4, 2, 3}));  // "▁", <0x41>, "b"
}

// The tools: one line naming the file, exit 1, no crash; qconvert refuses to embed it.
TEST(TokenizerBytePieces, ToolsRefuseMalformedBytePieceWithOneLine) {
  test::ScratchDir dir;
  const fs::path hf = dir / "hf";
  std::filesystem::copy(test::stories_dir(), hf);
  fs::permissions(hf / "tokenizer.model", fs::perms::owner_write, fs::perm_options::add);
  {
    auto bytes = test::read_bytes(hf / "tokenizer.model");
    replace_once(bytes, "<0x41>", "<0x-3>");
    test::write_bytes(hf / "tokenizer.model", bytes);
  }
  auto r = test::run_command(tool("qtok") + " --tokenizer " + test::quoted(hf.string()) + " -p 'A cat'");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("tokenizer.model: tokenizer: byte piece 68 '<0x-3>'"), std::string::npos) << r.out;

  const fs::path out = dir / "out";
  fs::create_directory(out);
  r = test::run_command(tool("qconvert") + " " + test::quoted(hf.string()) + " -o " + test::quoted((out / "m.q8").string()) +
                        " --type q8 -t 1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("byte piece 68 '<0x-3>'"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::is_empty(out));

  const fs::path model = model_with_respelled_piece(dir, "<0x41>", "<0x-3>");
  for (const std::string& cmd : {tool("qtok") + " -m " + test::quoted(model.string()) + " -p 'A cat'",
                                 tool("qrun") + " -m " + test::quoted(model.string()) + " -p 'A cat' -n 4 -t 1"}) {
    r = test::run_command(cmd);
    EXPECT_EQ(r.exit_code, 1) << cmd << "\n" << r.out;
    EXPECT_NE(r.out.find(model.string() + ": at offset "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("byte piece 68 '<0x-3>'"), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

// ---------------------------------------------------------------- tokenizer.json stages

// `"pre_tokenizer": "x"` was skipped as if absent, and the ids changed (no byte-level
// mapping at all). Every stage must be null or an object with a string "type"; a
// Sequence needs its list.
TEST(TokenizerJsonStages, MalformedStagesAreRefused) {
  const nlohmann::json model = {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}}}, {"merges", nlohmann::json::array()}};
  const std::pair<nlohmann::json, std::string> cases[] = {
      {{{"pre_tokenizer", "x"}}, R"(pre_tokenizer "x" is not an object with a string "type")"},
      {{{"pre_tokenizer", {{"add_prefix_space", false}}}}, "pre_tokenizer {\"add_prefix_space\":false} is not an object"},
      {{{"pre_tokenizer", {{"type", 3}}}}, "pre_tokenizer {\"type\":3} is not an object"},
      {{{"pre_tokenizer", {{"type", "Sequence"}}}}, R"(pre_tokenizer Sequence without a "pretokenizers" list)"},
      {{{"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {nullptr}}}}}, "pre_tokenizer null is not an object"},
      {{{"normalizer", "NFC"}}, R"(normalizer "NFC" is not an object with a string "type")"},
      {{{"normalizer", {{"type", "Sequence"}, {"normalizers", "x"}}}}, R"(normalizer Sequence without a "normalizers" list)"},
      {{{"post_processor", 7}}, "post_processor 7 is not an object"},
  };
  test::ScratchDir dir;
  for (const auto& [stages, want] : cases) {
    nlohmann::json j = stages;
    j["model"] = model;
    test::write_text(dir / "tokenizer.json", j.dump());
    const std::string e = load_error([&] { load_hf_tokenizer(dir.path()); });
    EXPECT_NE(e.find("tokenizer.json: " + want), std::string::npos) << j.dump() << "\n" << e;
  }
  // null stages mean none, as in Hugging Face.
  test::write_text(dir / "tokenizer.json",
                   nlohmann::json{{"model", model}, {"pre_tokenizer", nullptr}, {"normalizer", nullptr},
                                  {"post_processor", nullptr}}
                       .dump());
  EXPECT_EQ(Tokenizer(load_hf_tokenizer(dir.path())).encode("ab", false, false).size(), 2u);
}

// ---------------------------------------------------------------- "▁" inside a piece

// SentencePiece's BPE (bpe_model.cc) as plainly as it can be written: the whole
// normalized text in characters, then again and again the adjacent pair whose join is
// a normal or user-defined piece with the best score (leftmost on ties), merged.
std::vector<int32_t> reference_sentencepiece_bpe(const TokenizerData& d, std::string_view text) {
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < d.pieces.size(); ++i) ids.emplace(d.pieces[i], static_cast<int32_t>(i));
  std::string norm(kSpaceMark);
  for (char c : text) c == ' ' ? norm += kSpaceMark : norm += c;
  std::vector<std::string> sym;
  for (size_t i = 0; i < norm.size();) {
    const auto c = static_cast<uint8_t>(norm[i]);
    const size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
    sym.push_back(norm.substr(i, n));
    i += n;
  }
  for (;;) {
    int best = -1;
    float best_score = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      const auto it = ids.find(sym[i] + sym[i + 1]);
      if (it == ids.end()) continue;
      const PieceType t = d.types[size_t(it->second)];
      if (t != PieceType::Normal && t != PieceType::UserDefined) continue;
      if (best < 0 || d.scores[size_t(it->second)] > best_score) best = int(i), best_score = d.scores[size_t(it->second)];
    }
    if (best < 0) break;
    sym[size_t(best)] += sym[size_t(best) + 1];
    sym.erase(sym.begin() + best + 1);
  }
  std::vector<int32_t> out;
  for (const std::string& s : sym) {
    const auto it = ids.find(s);
    if (it != ids.end()) {
      out.push_back(it->second);
      continue;
    }
    for (unsigned char b : s) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      out.push_back(ids.at(name));
    }
  }
  return out;
}

// A piece with "▁" at byte 1 or 2 ("e▁", "a▁bc") made `at - 3` underflow and the
// exception abort qtok and qrun. Such a piece is legal (a trainer with
// split_by_whitespace=false writes them); SentencePiece then merges across spaces, and
// so must qrun: stories260K with its best piece "▁t" respelled "e▁".
TEST(TokenizerSpaceInsidePiece, MergesAcrossWordsLikeSentencePiece) {
  test::ScratchDir dir;
  const fs::path hf = respelled_tokenizer(dir, "\x0a\x04\xE2\x96\x81t", "\x0a\x04" "e\xE2\x96\x81");  // piece 259
  const Tokenizer t(load_hf_tokenizer(hf));
  ASSERT_EQ(t.piece(259), "e\xE2\x96\x81");
  const auto ids = t.encode("the cat", false, false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 259), ids.end()) << "the piece spanning the space is not used";
  EXPECT_EQ(t.decode(ids), "the cat");
  std::ifstream in(test::shared_dir() / "corpus/tinystories_valid_excerpt.txt");
  int lines = 0;
  for (std::string line; std::getline(in, line) && lines < 12;) {
    if (line.empty()) continue;
    line = line.substr(0, 400);
    EXPECT_EQ(t.encode(line, false, false), reference_sentencepiece_bpe(t.data(), line)) << line;
    EXPECT_EQ(t.decode(t.encode(line, false, false)), line);
    ++lines;
  }
  EXPECT_EQ(lines, 12);
  // The same from the model file and from qtok (which used to abort).
  const Tokenizer stored(deserialize_tokenizer(serialize_tokenizer(t.data()), "m", 0));
  EXPECT_EQ(stored.encode("the cat", false, false), ids);
  const auto r = test::run_command(tool("qtok") + " --tokenizer " + test::quoted(hf.string()) + " -p 'the cat'");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  std::string want;
  for (size_t i = 0; i < ids.size(); ++i) want += (i ? " " : "") + std::to_string(ids[i]);
  EXPECT_EQ(r.out, want + "\n");
}

TEST(TokenizerSpaceInsidePiece, SpaceMarkAfterATwoByteCharacter) {
  // "é▁" ("\xC3\xA9" then "▁") puts the mark at byte 2.
  test::ScratchDir dir;
  const fs::path hf = respelled_tokenizer(dir, "\x0a\x05\xE2\x96\x81th", "\x0a\x05\xC3\xA9\xE2\x96\x81");  // piece 308
  const Tokenizer t(load_hf_tokenizer(hf));
  ASSERT_EQ(t.piece(308), "\xC3\xA9\xE2\x96\x81");
  for (const std::string text : {"caf\xC3\xA9 time", "\xC3\xA9 \xC3\xA9", "the theme"}) {
    const auto ids = t.encode(text, false, false);
    EXPECT_EQ(ids, reference_sentencepiece_bpe(t.data(), text)) << text;
    EXPECT_EQ(t.decode(ids), text);
  }
  const auto ids = t.encode("\xC3\xA9 \xC3\xA9", false, false);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 308), ids.end());
}

// ---------------------------------------------------------------- threads

// One const Tokenizer shared by several threads gives each the ids (and text) it gives
// one thread: the byte-level pre-split's match data was shared and overwritten.
class TokenizerThreads : public ::testing::TestWithParam<const char*> {};

TEST_P(TokenizerThreads, SharedTokenizerEncodesAndDecodesAsSequentially) {
  const Tokenizer t(load_hf_tokenizer(test::shared_dir() / "tokenizers" / GetParam()));
  const std::string corpus = test::read_text(test::shared_dir() / "corpus/pride_and_prejudice.txt").substr(0, 96 << 10);
  std::vector<std::string> chunks;
  for (size_t at = 0; at < corpus.size();) {  // paragraphs of various lengths
    size_t end = corpus.find("\n\n", at + 200);
    end = end == std::string::npos ? corpus.size() : end + 2;
    chunks.push_back(corpus.substr(at, end - at) + (chunks.size() % 5 == 0 ? "<|eot_id|></s>" : ""));
    at = end;
  }
  ASSERT_GT(chunks.size(), 50u);
  std::vector<std::vector<int32_t>> want_ids;
  std::vector<std::string> want_text;
  for (const auto& c : chunks) {
    want_ids.push_back(t.encode(c, true, true));
    want_text.push_back(t.decode(want_ids.back()));
  }
  constexpr int kThreads = 4;
  std::atomic<int> wrong{0}, thrown{0};
  std::vector<std::thread> pool;
  for (int k = 0; k < kThreads; ++k) {
    pool.emplace_back([&, k] {
      try {
        for (size_t n = 0; n < 2 * chunks.size(); ++n) {
          const size_t i = (n * 7 + size_t(k) * 13) % chunks.size();  // threads work on different chunks
          if (t.encode(chunks[i], true, true) != want_ids[i]) ++wrong;
          if (t.decode(want_ids[i]) != want_text[i]) ++wrong;
        }
      } catch (...) {
        ++thrown;
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(thrown.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(ByteLevelAndSentencePiece, TokenizerThreads, ::testing::Values("llama3", "llama2"),
                         [](const auto& info) { return test::param_name(info.param); });

}  // namespace
}  // namespace qrun
