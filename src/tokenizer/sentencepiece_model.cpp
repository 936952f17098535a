#include "src/tokenizer/sentencepiece_model.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "qrun/error.h"

namespace qrun {

namespace {

// Minimal protobuf wire-format reader over a byte range.
class ProtoReader {
 public:
  ProtoReader(const uint8_t* begin, const uint8_t* end, const std::string& path, const uint8_t* base)
      : p_(begin), end_(end), path_(path), base_(base) {}
  bool done() const { return p_ >= end_; }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated varint");
      const uint8_t b = *p_++;
      v |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    fail("varint too long");
  }
  // Reads a tag: field number and wire type.
  void tag(uint32_t* field, uint32_t* wire) {
    const uint64_t t = varint();
    *field = static_cast<uint32_t>(t >> 3);
    *wire = static_cast<uint32_t>(t & 7);
  }
  ProtoReader sub() {
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail("length-delimited field runs past the end");
    ProtoReader r(p_, p_ + n, path_, base_);
    p_ += n;
    return r;
  }
  std::string bytes() {
    ProtoReader r = sub();
    return std::string(reinterpret_cast<const char*>(r.p_), static_cast<size_t>(r.end_ - r.p_));
  }
  float fixed32_float() {
    if (end_ - p_ < 4) fail("truncated fixed32");
    float f;
    std::memcpy(&f, p_, 4);
    p_ += 4;
    return f;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); return;
      case 1: advance(8); return;
      case 2: sub(); return;
      case 5: advance(4); return;
      default: fail("unsupported wire type " + std::to_string(wire));
    }
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(path_, p_ - base_, "malformed tokenizer.model: " + why);
  }

 private:
  void advance(int64_t n) {
    if (end_ - p_ < n) fail("truncated field");
    p_ += n;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& path_;
  const uint8_t* base_;
};

}  // namespace

TokenizerData read_sentencepiece_model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, -1, "cannot open");
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw Error(path, 0, "file is empty");
  TokenizerData d;
  d.kind = TokenizerKind::SentencePiece;
  // TrainerSpec defaults, which protobuf leaves out of the file when unchanged.
  d.unk = 0, d.bos = 1, d.eos = 2, d.pad = -1;
  d.byte_fallback = false;
  d.add_dummy_prefix = true;
  d.remove_extra_whitespaces = true;
  int model_type = 2;  // BPE unless the trainer spec says otherwise
  bool identity_normalizer = true;
  ProtoReader top(bytes.data(), bytes.data() + bytes.size(), path, bytes.data());
  while (!top.done()) {
    uint32_t field, wire;
    top.tag(&field, &wire);
    if (field == 1 && wire == 2) {  // SentencePiece
      ProtoReader p = top.sub();
      std::string piece;
      float score = 0;
      uint32_t type = 1;
      while (!p.done()) {
        uint32_t f, w;
        p.tag(&f, &w);
        if (f == 1 && w == 2) piece = p.bytes();
        else if (f == 2 && w == 5) score = p.fixed32_float();
        else if (f == 3 && w == 0) type = static_cast<uint32_t>(p.varint());
        else p.skip(w);
      }
      if (type < 1 || type > 6) top.fail("piece '" + piece + "' has unknown type " + std::to_string(type));
      d.pieces.push_back(std::move(piece));
      d.scores.push_back(score);
      d.types.push_back(static_cast<PieceType>(type));
    } else if (field == 2 && wire == 2) {  // TrainerSpec
      ProtoReader t = top.sub();
      while (!t.done()) {
        uint32_t f, w;
        t.tag(&f, &w);
        if (f == 3 && w == 0) model_type = static_cast<int>(t.varint());
        else if (f == 35 && w == 0) d.byte_fallback = t.varint() != 0;
        else if (f == 40 && w == 0) d.unk = static_cast<int32_t>(t.varint());
        else if (f == 41 && w == 0) d.bos = static_cast<int32_t>(t.varint());
        else if (f == 42 && w == 0) d.eos = static_cast<int32_t>(t.varint());
        else if (f == 43 && w == 0) d.pad = static_cast<int32_t>(t.varint());
        else t.skip(w);
      }
    } else if (field == 3 && wire == 2) {  // NormalizerSpec
      ProtoReader n = top.sub();
      while (!n.done()) {
        uint32_t f, w;
        n.tag(&f, &w);
        if (f == 1 && w == 2) {
          const std::string name = n.bytes();
          identity_normalizer = name == "identity" || name.empty();
        } else if (f == 3 && w == 0) {
          d.add_dummy_prefix = n.varint() != 0;
        } else if (f == 4 && w == 0) {
          d.remove_extra_whitespaces = n.varint() != 0;
        } else {
          n.skip(w);
        }
      }
    } else {
      top.skip(wire);
    }
  }
  if (d.pieces.empty()) throw Error(path, -1, "no pieces in tokenizer.model");
  if (model_type != 2)
    throw Error(path, -1, "SentencePiece model type " + std::to_string(model_type) + " is not supported (only BPE)");
  if (!identity_normalizer)
    throw Error(path, -1, "SentencePiece normalizers other than 'identity' are not supported");
  const auto n = static_cast<int32_t>(d.pieces.size());
  // A negative or out-of-range id means "none".
  auto check = [&](int32_t& id) {
    if (id < 0 || id >= n) id = -1;
  };
  check(d.unk), check(d.bos), check(d.eos), check(d.pad);
  d.add_bos = d.bos >= 0;
  validate_tokenizer_data(d, path, -1);
  return d;
}

}  // namespace qrun
