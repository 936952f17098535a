// A model file is untrusted input: every way of corrupting one must give its own
// clear error, never a crash. Corruptions of the metadata are "resealed" (checksum
// recomputed) so that each test reaches the specific check, as a crafted file would.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstddef>
#include <cstring>
#include <limits>

#include "common/model_fixture.h"
#include "qrun/error.h"
#include "qrun/format.h"
#include "qrun/model_file.h"

namespace qrun {
namespace {

using test::ScratchDir;

class CorruptModelFile : public ::testing::Test {
 protected:
  void SetUp() override { bytes_ = test::read_bytes(test::converted_stories(DType::Q8)); }

  format::FileHeader header() const {
    format::FileHeader h;
    std::memcpy(&h, bytes_.data(), sizeof h);
    return h;
  }
  format::TensorEntry entry(size_t i) const {
    format::TensorEntry e;
    std::memcpy(&e, bytes_.data() + header().tensors_offset + i * sizeof e, sizeof e);
    return e;
  }
  void set_entry(size_t i, const format::TensorEntry& e) {
    std::memcpy(bytes_.data() + header().tensors_offset + i * sizeof e, &e, sizeof e);
  }
  size_t find_entry(const std::string& name) const {
    for (size_t i = 0; i < header().n_tensors; ++i)
      if (name == entry(i).name) return i;
    ADD_FAILURE() << "no tensor " << name;
    return 0;
  }
  // Recomputes the metadata checksum, as a crafted file would have it.
  void reseal() {
    format::FileHeader h = header();
    h.meta_checksum = XXH3_64bits(bytes_.data() + sizeof h, h.data_offset - sizeof h);
    std::memcpy(bytes_.data(), &h, sizeof h);
  }
  // Opens the mutated bytes and returns the error message ("" when it opened).
  std::string open_error(bool verify = false) {
    const auto path = dir_ / "corrupt.q8";
    test::write_bytes(path, bytes_);
    try {
      ModelFile m(path.string());
      if (verify) m.verify_checksums();
    } catch (const Error& e) {
      EXPECT_EQ(e.file(), path.string());
      return e.what();
    }
    return "";
  }

  ScratchDir dir_;
  std::vector<uint8_t> bytes_;
};

TEST_F(CorruptModelFile, IntactFileOpensAndVerifies) { EXPECT_EQ(open_error(true), ""); }

TEST_F(CorruptModelFile, TruncatedAtSeveralPoints) {
  const size_t full = bytes_.size();
  for (size_t cut : {size_t{0}, size_t{7}, size_t{100}, size_t{128}, size_t{4096}, full / 2, full - 1}) {
    bytes_.resize(cut);
    const std::string err = open_error();
    EXPECT_TRUE(err.find("empty") != std::string::npos || err.find("too small") != std::string::npos ||
                err.find("truncated") != std::string::npos)
        << "cut at " << cut << ": " << err;
    bytes_ = test::read_bytes(test::converted_stories(DType::Q8));
  }
}

// Files written before mixture-of-experts models end HParams at 128 bytes: they still
// open, with the fields after it (experts, reserved) zero whatever bytes follow.
TEST_F(CorruptModelFile, HParamsOfOlderFilesEndAt128Bytes) {
  format::FileHeader h = header();
  h.hparams_size = format::kHParamsSizeV1;
  std::memcpy(bytes_.data(), &h, sizeof h);
  const size_t reserved = offsetof(format::HParams, reserved);
  std::memset(bytes_.data() + h.hparams_offset + reserved, 0xAB, sizeof(format::HParams) - reserved);
  reseal();
  EXPECT_EQ(open_error(true), "");
  // The same bytes read as a 192-byte HParams: reserved bytes that are not zero.
  h.hparams_size = sizeof(format::HParams);
  std::memcpy(bytes_.data(), &h, sizeof h);
  reseal();
  EXPECT_NE(open_error().find("reserved bytes are not zero"), std::string::npos);
  h.hparams_size = 160;
  std::memcpy(bytes_.data(), &h, sizeof h);
  reseal();
  EXPECT_NE(open_error().find("hyper-parameter section out of bounds"), std::string::npos);
}

// A dense architecture with experts, and a mixture-of-experts one asking for more
// experts per token than it has.
TEST_F(CorruptModelFile, ExpertCountsAreChecked) {
  const format::FileHeader h = header();
  format::HParams hp;
  std::memcpy(&hp, bytes_.data() + h.hparams_offset, sizeof hp);
  format::HParams bad = hp;
  bad.n_experts = 8;
  bad.n_experts_used = 2;
  std::memcpy(bytes_.data() + h.hparams_offset, &bad, sizeof bad);
  reseal();
  EXPECT_NE(open_error().find("llama has no experts, n_experts is 8"), std::string::npos);
  bad = hp;
  bad.arch = static_cast<uint32_t>(format::Arch::Mixtral);
  bad.n_experts = 8;
  bad.n_experts_used = 9;
  std::memcpy(bytes_.data() + h.hparams_offset, &bad, sizeof bad);
  reseal();
  EXPECT_NE(open_error().find("n_experts_used 9 of 8 experts"), std::string::npos);
}

// Granite's multipliers and gpt-oss's SwiGLU limit: a negative or non-finite one is refused at load.
TEST_F(CorruptModelFile, GraniteMultipliersAndSwigluLimitAreChecked) {
  const format::FileHeader h = header();
  format::HParams hp;
  std::memcpy(&hp, bytes_.data() + h.hparams_offset, sizeof hp);
  for (float format::HParams::*field : {&format::HParams::embedding_scale, &format::HParams::residual_scale,
                                         &format::HParams::logit_scale, &format::HParams::swiglu_limit}) {
    for (const float v : {-0.5f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
      format::HParams bad = hp;
      bad.*field = v;
      std::memcpy(bytes_.data() + h.hparams_offset, &bad, sizeof bad);
      reseal();
      EXPECT_NE(open_error().find("Granite scale or SwiGLU limit field is negative or not finite"), std::string::npos) << v;
    }
  }
}

TEST_F(CorruptModelFile, WrongMagic) {
  bytes_[0] = 'X';
  EXPECT_NE(open_error().find("bad magic"), std::string::npos);
}

TEST_F(CorruptModelFile, FutureVersion) {
  format::FileHeader h = header();
  h.version = 99;
  std::memcpy(bytes_.data(), &h, sizeof h);
  EXPECT_NE(open_error().find("unsupported format version 99"), std::string::npos);
}

TEST_F(CorruptModelFile, MetadataChecksumMismatch) {
  format::TensorEntry e = entry(1);
  e.ne[0] += 1;
  set_entry(1, e);
  EXPECT_NE(open_error().find("metadata checksum mismatch"), std::string::npos);
}

TEST_F(CorruptModelFile, OffsetPastEnd) {
  const size_t i = find_entry("norm");
  format::TensorEntry e = entry(i);
  e.offset = header().file_size + 4096;
  set_entry(i, e);
  reseal();
  EXPECT_NE(open_error().find("tensor 'norm': data"), std::string::npos);
}

TEST_F(CorruptModelFile, HugeSizeDoesNotOverflow) {
  const size_t i = find_entry("norm");
  format::TensorEntry e = entry(i);
  e.ne[0] = 1ull << 32;
  e.size = 4ull << 32;
  set_entry(i, e);
  reseal();
  EXPECT_NE(open_error().find("tensor 'norm': data"), std::string::npos);
}

TEST_F(CorruptModelFile, OverlappingTensors) {
  const size_t a = find_entry("layers.0.wq"), b = find_entry("layers.0.wk");
  format::TensorEntry eb = entry(b);
  eb.offset = entry(a).offset;
  set_entry(b, eb);
  reseal();
  EXPECT_NE(open_error().find("overlap"), std::string::npos);
}

TEST_F(CorruptModelFile, MisalignedTensor) {
  const size_t i = find_entry("layers.1.wv");
  format::TensorEntry e = entry(i);
  e.offset += 64;
  set_entry(i, e);
  reseal();
  EXPECT_NE(open_error().find("tensor 'layers.1.wv': offset"), std::string::npos);
}

TEST_F(CorruptModelFile, ShapeSizeMismatch) {
  const size_t i = find_entry("layers.2.w1");
  format::TensorEntry e = entry(i);
  e.ne[1] += 1;
  set_entry(i, e);
  reseal();
  EXPECT_NE(open_error().find("tensor 'layers.2.w1': size"), std::string::npos);
}

TEST_F(CorruptModelFile, UnknownElementType) {
  const size_t i = find_entry("layers.2.w3");
  format::TensorEntry e = entry(i);
  e.dtype = 42;
  set_entry(i, e);
  reseal();
  EXPECT_NE(open_error().find("unknown element type 42"), std::string::npos);
}

TEST_F(CorruptModelFile, RetiredInterleavedLayoutsAskToConvertAgain) {
  const size_t i = find_entry("layers.2.w3");
  const format::TensorEntry original = entry(i);
  for (const auto& [id, name] : {std::pair{6u, "q6"}, std::pair{7u, "q5"}, std::pair{8u, "q3"}}) {
    format::TensorEntry e = original;
    e.dtype = id;
    set_entry(i, e);
    reseal();
    const std::string error = open_error();
    EXPECT_NE(error.find("tensor 'layers.2.w3': element type " + std::to_string(id) + " is " + name), std::string::npos)
        << error;
    EXPECT_NE(error.find("convert the model again"), std::string::npos) << error;
  }
}

TEST_F(CorruptModelFile, MissingTensor) {
  const size_t i = find_entry("layers.4.w2");
  format::TensorEntry e = entry(i);
  std::strcpy(e.name, "layers.4.w9");
  set_entry(i, e);
  reseal();
  EXPECT_NE(open_error().find("missing tensor 'layers.4.w2'"), std::string::npos);
}

TEST_F(CorruptModelFile, NameNotTerminated) {
  const size_t i = find_entry("norm");
  format::TensorEntry e = entry(i);
  std::memset(e.name, 'a', sizeof e.name);
  set_entry(i, e);
  reseal();
  EXPECT_NE(open_error().find("not NUL-terminated"), std::string::npos);
}

TEST_F(CorruptModelFile, LayerRangeWrong) {
  format::LayerRange r;
  const uint64_t at = header().layers_offset + sizeof r;  // layer 1
  std::memcpy(&r, bytes_.data() + at, sizeof r);
  r.size -= 4096;
  std::memcpy(bytes_.data() + at, &r, sizeof r);
  reseal();
  EXPECT_NE(open_error().find("layer 1: range does not hold exactly its tensors"), std::string::npos);
}

TEST_F(CorruptModelFile, BadHyperParameters) {
  format::HParams hp;
  const uint64_t at = header().hparams_offset;
  std::memcpy(&hp, bytes_.data() + at, sizeof hp);
  hp.n_kv_heads = 3;  // does not divide 8 heads
  std::memcpy(bytes_.data() + at, &hp, sizeof hp);
  reseal();
  EXPECT_NE(open_error().find("n_kv_heads 3"), std::string::npos);
}

TEST_F(CorruptModelFile, TensorChecksumMismatchWhenVerifying) {
  const auto e = entry(find_entry("layers.3.wo"));
  bytes_[e.offset + 5] ^= 0x40;
  EXPECT_EQ(open_error(false), "");  // data is not read at open
  EXPECT_NE(open_error(true).find("tensor 'layers.3.wo': checksum mismatch"), std::string::npos);
}

TEST_F(CorruptModelFile, TrailingGarbage) {
  bytes_.push_back(0);
  EXPECT_NE(open_error().find("trailing bytes"), std::string::npos);
}

// Header errors name the offset of the field at fault (docs/format.md's layout:
// n_tensors at 80, n_layers at 84, data_offset at 88, meta_checksum at 96); they used
// to be 8 bytes off.
TEST_F(CorruptModelFile, HeaderErrorsNameTheFieldsOffset) {
  const std::vector<uint8_t> intact = bytes_;
  auto with_header = [&](auto change) {
    bytes_ = intact;
    format::FileHeader h = header();
    change(h);
    std::memcpy(bytes_.data(), &h, sizeof h);
    return open_error();
  };
  EXPECT_NE(with_header([](format::FileHeader& h) { h.n_tensors = 0; }).find("at offset 80: bad tensor count 0"),
            std::string::npos);
  EXPECT_NE(with_header([](format::FileHeader& h) { h.n_layers = format::kMaxLayers + 1; })
                .find("at offset 84: bad layer count"),
            std::string::npos);
  EXPECT_NE(with_header([](format::FileHeader& h) { h.data_offset += 1; }).find("at offset 88: data offset"),
            std::string::npos);
  EXPECT_NE(with_header([](format::FileHeader& h) { h.meta_checksum ^= 1; }).find("at offset 96: metadata checksum"),
            std::string::npos);
}

TEST(ModelFile, MissingFile) {
  try {
    ModelFile m("/nonexistent/model.q4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.q4: cannot open"), std::string::npos);
  }
}

TEST(ModelFile, LayersAreContiguousAlignedRanges) {
  ModelFile m(test::converted_stories(DType::Q4).string());
  ASSERT_EQ(m.layers().size(), 5u);
  uint64_t prev_end = 0;
  for (size_t l = 0; l < m.layers().size(); ++l) {
    const auto& r = m.layers()[l];
    EXPECT_EQ(r.offset % 4096, 0u);
    EXPECT_EQ(r.size % 4096, 0u);
    if (l) {
      EXPECT_EQ(r.offset, prev_end);  // layers follow each other
    }
    prev_end = r.offset + r.size;
  }
  for (const auto& t : m.tensors()) EXPECT_EQ(t.offset % 4096, 0u) << t.name;
}

}  // namespace
}  // namespace qrun
