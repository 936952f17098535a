// The GGUF reader against well-formed and hostile files: every count, length, offset
// and extent is checked before use, and a bad file is a qrun::Error naming the file,
// the byte offset and the field, never a crash (ASan/UBSan runs these too).
#include <gtest/gtest.h>

#include <cstring>

#include "common/gguf_stories.h"
#include "common/gguf_writer.h"
#include "common/test_paths.h"
#include "convert/converter.h"
#include "convert/gguf_convert.h"
#include "convert/gguf_reader.h"
#include "qrun/error.h"

namespace qrun {
namespace {

using test::GgufWriter;

std::vector<uint8_t> small_file() {
  GgufWriter w;
  w.str("general.architecture", "llama");
  w.u32("general.alignment", 64);
  w.u64("a.u64", 1ull << 40);
  w.i32("a.i32", -5);
  w.f32("a.f32", 1.5f);
  w.boolean("a.bool", true);
  w.strings("a.strings", {"x", "", "hello world"});
  w.f32s("a.floats", {1.0f, -2.0f});
  w.i32s("a.ints", {3, -4});
  w.tensor("t0", {32, 2}, test::kGgmlQ4_0, std::vector<uint8_t>(36, 0x11));
  w.tensor("t1", {3}, test::kGgmlF32, std::vector<uint8_t>(12, 0));
  return w.bytes(64);
}

// Parses bytes; returns the error message ("" when it parsed).
std::string parse_error(const std::vector<uint8_t>& b, int64_t* offset = nullptr) {
  try {
    GgufFile g(b.data(), b.size(), "test.gguf");
    return "";
  } catch (const Error& e) {
    if (offset) *offset = e.offset();
    EXPECT_EQ(e.file(), "test.gguf");
    return e.what();
  }
}

TEST(GgufReader, ReadsEveryValueTypeAndTensorInfo) {
  const auto b = small_file();
  const GgufFile g(b.data(), b.size(), "test.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_uint("a.u64"), 1ull << 40);
  EXPECT_EQ(g.find("a.i32")->i, -5);
  EXPECT_EQ(g.get_float_or("a.f32", 0), 1.5);
  EXPECT_TRUE(g.get_bool_or("a.bool", false));
  EXPECT_EQ(g.get_string_array("a.strings").size(), 3u);
  EXPECT_EQ(g.get_string_array("a.strings")[2], "hello world");
  EXPECT_EQ(g.get_float_array("a.floats"), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(g.get_int_array("a.ints"), (std::vector<int64_t>{3, -4}));
  ASSERT_EQ(g.tensors().size(), 2u);
  const GgufTensorInfo* t0 = g.tensor("t0");
  ASSERT_NE(t0, nullptr);
  EXPECT_EQ(t0->size, 36u);
  EXPECT_EQ(t0->n_rows(), 2);
  EXPECT_EQ(t0->offset % 64, 0u);
  EXPECT_EQ(g.tensor_data(*t0)[0], 0x11);
  EXPECT_EQ(g.tensor("t1")->offset, t0->offset + 64);
  // Typed access refuses the wrong type, naming the key.
  EXPECT_THROW(g.get_uint("a.i32"), Error);
  EXPECT_THROW(g.get_string("a.u64"), Error);
  EXPECT_THROW(g.get_string_array("a.floats"), Error);
  try {
    g.get_uint("a.strings");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a.strings"), std::string::npos) << e.what();
    EXPECT_GT(e.offset(), 0);
  }
}

TEST(GgufReader, EveryTruncationIsAnError) {
  const auto b = small_file();
  const GgufFile whole(b.data(), b.size(), "x");
  const size_t data_start = whole.data_offset();
  const size_t end = whole.tensor("t1")->offset + whole.tensor("t1")->size;  // then only padding
  for (size_t n = 0; n < end; ++n) {
    const std::vector<uint8_t> cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    const std::string err = parse_error(cut);
    // Cut in the data section, a tensor runs past the end; before it, a field does.
    EXPECT_FALSE(err.empty()) << "truncated to " << n << " bytes (data at " << data_start << ")";
  }
}

void put_u64_at(std::vector<uint8_t>& b, size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }

TEST(GgufReader, HostileHeaderCounts) {
  auto b = small_file();
  int64_t off = -1;
  auto bad = b;
  bad[0] = 'X';
  EXPECT_NE(parse_error(bad, &off).find("not a GGUF file"), std::string::npos);
  EXPECT_EQ(off, 0);
  bad = b;
  bad[4] = 9;
  EXPECT_NE(parse_error(bad, &off).find("version 9"), std::string::npos);
  EXPECT_EQ(off, 4);
  bad = b;
  put_u64_at(bad, 8, 1ull << 60);  // tensor count
  EXPECT_NE(parse_error(bad, &off).find("tensor count"), std::string::npos);
  EXPECT_EQ(off, 8);
  bad = b;
  put_u64_at(bad, 16, UINT64_MAX);  // key count
  EXPECT_NE(parse_error(bad, &off).find("metadata key count"), std::string::npos);
  EXPECT_EQ(off, 16);
}

TEST(GgufReader, HostileStringsAndArrays) {
  auto huge_string = [](uint64_t len) {
    GgufWriter w;
    std::vector<uint8_t> v;
    GgufWriter::put<uint64_t>(v, len);
    v.insert(v.end(), {'a', 'b'});
    w.raw("k", test::kGgufString, v);
    return w.bytes();
  };
  int64_t off = -1;
  EXPECT_NE(parse_error(huge_string(UINT64_MAX), &off).find("runs past the end"), std::string::npos);
  EXPECT_EQ(off, 24 + 8 + 1 + 4);  // the length field, after the key and its type
  EXPECT_NE(parse_error(huge_string(1000)).find("runs past the end"), std::string::npos);

  auto huge_array = [](uint32_t elem, uint64_t count) {
    GgufWriter w;
    std::vector<uint8_t> v;
    GgufWriter::put<uint32_t>(v, elem);
    GgufWriter::put<uint64_t>(v, count);
    v.resize(v.size() + 64, 0);
    w.raw("arr", test::kGgufArray, v);
    return w.bytes();
  };
  EXPECT_NE(parse_error(huge_array(test::kGgufString, 1ull << 62)).find("array of"), std::string::npos);
  EXPECT_NE(parse_error(huge_array(test::kGgufF64, (1ull << 61) + 1)).find("runs past the end"), std::string::npos);
  {
    GgufWriter w;  // the second string of two claims 1000 bytes
    std::vector<uint8_t> v;
    GgufWriter::put<uint32_t>(v, test::kGgufString);
    GgufWriter::put<uint64_t>(v, 2);
    GgufWriter::put<uint64_t>(v, 3);
    v.insert(v.end(), {'a', 'b', 'c'});
    GgufWriter::put<uint64_t>(v, 1000);
    w.raw("arr", test::kGgufArray, v);
    EXPECT_NE(parse_error(w.bytes()).find("array string length 1000 runs past the end"), std::string::npos);
  }
  EXPECT_NE(parse_error(huge_array(test::kGgufArray, 1)).find("arrays of arrays"), std::string::npos);
  EXPECT_NE(parse_error(huge_array(77, 1)).find("unknown element type"), std::string::npos);
  GgufWriter w;
  w.raw("k", 13, {0});
  EXPECT_NE(parse_error(w.bytes()).find("unknown value type 13"), std::string::npos);
  GgufWriter dup;
  dup.u32("k", 1);
  dup.u32("k", 2);
  EXPECT_NE(parse_error(dup.bytes()).find("duplicate metadata key"), std::string::npos);
  GgufWriter align;
  align.u32("general.alignment", 48);
  EXPECT_NE(parse_error(align.bytes()).find("power of two"), std::string::npos);
}

TEST(GgufReader, HostileTensorInfos) {
  auto one = [](std::vector<int64_t> ne, uint32_t type, size_t bytes, uint64_t forced = UINT64_MAX) {
    GgufWriter w;
    w.tensor("t", std::move(ne), type, std::vector<uint8_t>(bytes, 0));
    if (forced != UINT64_MAX) w.set_offset(0, forced);
    return w.bytes();
  };
  EXPECT_EQ(parse_error(one({4, 2}, test::kGgmlF32, 32)), "");
  EXPECT_NE(parse_error(one({4, 2, 1, 1, 1}, test::kGgmlF32, 32)).find("n_dims 5"), std::string::npos);
  EXPECT_NE(parse_error(one({4, 0}, test::kGgmlF32, 0)).find("dimension 1 is 0"), std::string::npos);
  EXPECT_NE(parse_error(one({1 << 30, 1 << 30, 1 << 30}, test::kGgmlF32, 0)).find("more than 2^50"), std::string::npos);
  EXPECT_NE(parse_error(one({33}, test::kGgmlQ4_0, 18)).find("not a whole number of Q4_0 blocks"), std::string::npos);
  EXPECT_NE(parse_error(one({32}, 16, 66)).find("unsupported type IQ2_XXS"), std::string::npos);
  EXPECT_NE(parse_error(one({32}, 99, 66)).find("unsupported type type 99"), std::string::npos);
  // Tensor data outside the file: the offset, or the extent from a huge shape.
  EXPECT_NE(parse_error(one({4}, test::kGgmlF32, 16, 1ull << 40)).find("outside the data section"), std::string::npos);
  EXPECT_NE(parse_error(one({4}, test::kGgmlF32, 16, UINT64_MAX - 31)).find("outside the data section"), std::string::npos);
  EXPECT_NE(parse_error(one({1 << 20, 1 << 20}, test::kGgmlF32, 16)).find("outside the data section"), std::string::npos);
  EXPECT_NE(parse_error(one({4}, test::kGgmlF32, 16, 8)).find("not a multiple of the alignment"), std::string::npos);
  // Overlapping tensors and duplicate names.
  GgufWriter w;
  w.tensor("a", {16}, test::kGgmlF32, std::vector<uint8_t>(64, 0));
  w.tensor("b", {16}, test::kGgmlF32, std::vector<uint8_t>(64, 0));
  w.tensor("c", {64}, test::kGgmlF32, std::vector<uint8_t>(256, 0));  // makes the data section long enough
  w.set_offset(1, 32);
  int64_t off = -1;
  EXPECT_NE(parse_error(w.bytes(), &off).find("overlaps tensor 'a'"), std::string::npos);
  EXPECT_GT(off, 24);
  GgufWriter d;
  d.tensor("a", {16}, test::kGgmlF32, std::vector<uint8_t>(64, 0));
  d.tensor("a", {16}, test::kGgmlF32, std::vector<uint8_t>(64, 0));
  EXPECT_NE(parse_error(d.bytes()).find("duplicate tensor name"), std::string::npos);
  GgufWriter longname;
  longname.tensor(std::string(64, 'n'), {16}, test::kGgmlF32, std::vector<uint8_t>(64, 0));
  EXPECT_NE(parse_error(longname.bytes()).find("exceeds the limit 63"), std::string::npos);
}

TEST(GgufReader, ReadsTheLlamaCppVocabFiles) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::shared_dir() / "tokenizers/llamacpp-vocab")) {
    if (e.path().extension() != ".gguf") continue;
    const GgufFile g(e.path().string());
    EXPECT_FALSE(g.get_string_array("tokenizer.ggml.tokens").empty()) << e.path();
    ++n;
  }
  EXPECT_GE(n, 10);
}

// Converting: architectures qrun lacks, missing keys and mis-shaped tensors are named.
std::string convert_error(const std::vector<uint8_t>& bytes) {
  test::ScratchDir dir;
  test::write_bytes(dir / "m.gguf", bytes);
  GgufImportOptions gopt;
  gopt.keep_types = true;
  try {
    convert_gguf((dir / "m.gguf").string(), (dir / "m.qrun").string(), ConvertOptions{}, gopt);
    return "";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.gguf"), std::string::npos) << e.what();
    return e.what();
  }
}

TEST(GgufConvert, RefusesWhatItCannotImport) {
  {
    GgufWriter w;
    w.str("general.architecture", "gemma3n");
    EXPECT_NE(convert_error(w.bytes()).find("unsupported GGUF architecture 'gemma3n'"), std::string::npos);
  }
  {
    GgufWriter w;
    w.str("general.architecture", "llama");
    w.u32("llama.block_count", 1);
    EXPECT_NE(convert_error(w.bytes()).find("llama.embedding_length"), std::string::npos);
  }
  // stories260K with one tensor renamed, one mis-shaped, one extra.
  const auto good = test::stories_gguf([](const std::string&) { return test::kGgmlF32; });
  EXPECT_EQ(convert_error(good), "");
  auto renamed = good;
  const std::string from = "blk.3.ffn_up.weight";
  auto it = std::search(renamed.begin(), renamed.end(), from.begin(), from.end());
  ASSERT_NE(it, renamed.end());
  *(it + 4) = '7';  // blk.7.ffn_up.weight: missing blk.3's, and a tensor beyond block_count
  const std::string err = convert_error(renamed);
  EXPECT_NE(err.find("lacks tensor 'blk.3.ffn_up.weight'"), std::string::npos) << err;
}

}  // namespace
}  // namespace qrun
