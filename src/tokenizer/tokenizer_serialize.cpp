// The tokenizer's encoding inside a model file: little-endian, length-prefixed,
// versioned on its own. Reading checks every length against the blob and every id
// against the vocabulary, since model files come from strangers.
#include <cstring>

#include "qrun/error.h"
#include "qrun/model_file.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {

namespace {

constexpr char kMagic[4] = {'Q', 'T', 'O', 'K'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kIgnoreMerges = 1, kDummyPrefix = 2, kByteFallback = 4, kAddBos = 8, kAddEos = 16, kNfc = 32,
                   kPrefixEverySegment = 64, kRemoveExtraWhitespaces = 128;  // the flags word

class Writer {
 public:
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  void u32(uint32_t v) { bytes(&v, 4); }
  void i32(int32_t v) { bytes(&v, 4); }
  void f32(float v) { bytes(&v, 4); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  std::vector<uint8_t> out;
};

class Reader {
 public:
  Reader(std::span<const uint8_t> blob, const std::string& file, uint64_t base) : b_(blob), file_(file), base_(base) {}
  void bytes(void* p, size_t n) {
    need(n);
    std::memcpy(p, b_.data() + pos_, n);
    pos_ += n;
  }
  uint32_t u32() {
    uint32_t v;
    bytes(&v, 4);
    return v;
  }
  int32_t i32() { return static_cast<int32_t>(u32()); }
  float f32() {
    float v;
    bytes(&v, 4);
    return v;
  }
  std::string str() {
    const uint32_t n = u32();
    need(n);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  // Counts are checked against the bytes left, so a lying count cannot allocate.
  uint32_t count(size_t min_bytes_each) {
    const uint32_t n = u32();
    if (min_bytes_each && n > (b_.size() - pos_) / min_bytes_each) fail("count " + std::to_string(n) + " exceeds the data");
    return n;
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw Error(file_, static_cast<int64_t>(base_ + pos_), "tokenizer data: " + why);
  }
  bool at_end() const { return pos_ == b_.size(); }

 private:
  void need(size_t n) const {
    if (n > b_.size() - pos_) fail("truncated");
  }
  std::span<const uint8_t> b_;
  const std::string& file_;
  uint64_t base_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<uint8_t> serialize_tokenizer(const TokenizerData& d) {
  Writer w;
  w.bytes(kMagic, 4);
  w.u32(kVersion);
  w.u32(static_cast<uint32_t>(d.kind));
  w.u32((d.ignore_merges ? kIgnoreMerges : 0u) | (d.add_dummy_prefix ? kDummyPrefix : 0u) |
        (d.byte_fallback ? kByteFallback : 0u) | (d.add_bos ? kAddBos : 0u) | (d.add_eos ? kAddEos : 0u) |
        (d.nfc ? kNfc : 0u) | (d.dummy_prefix_every_segment ? kPrefixEverySegment : 0u) |
        (d.remove_extra_whitespaces ? kRemoveExtraWhitespaces : 0u));
  for (int32_t id : {d.bos, d.eos, d.unk, d.pad}) w.i32(id);
  w.u32(static_cast<uint32_t>(d.pieces.size()));
  for (size_t i = 0; i < d.pieces.size(); ++i) {
    w.str(d.pieces[i]);
    w.f32(d.scores[i]);
    const uint8_t t = static_cast<uint8_t>(d.types[i]);
    w.bytes(&t, 1);
  }
  w.u32(static_cast<uint32_t>(d.merges.size()));
  for (const auto& [a, b] : d.merges) w.i32(a), w.i32(b);
  w.str(d.pretokenizer_regex);
  w.u32(static_cast<uint32_t>(d.extra_eos.size()));
  for (int32_t id : d.extra_eos) w.i32(id);
  w.str(d.chat_template);
  return std::move(w.out);
}

std::shared_ptr<const TokenizerData> deserialize_tokenizer(std::span<const uint8_t> blob, const std::string& file,
                                                           uint64_t blob_offset) {
  Reader r(blob, file, blob_offset);
  char magic[4];
  r.bytes(magic, 4);
  if (std::memcmp(magic, kMagic, 4) != 0) r.fail("bad magic");
  const uint32_t version = r.u32();
  if (version != kVersion) r.fail("unsupported version " + std::to_string(version));
  auto d = std::make_shared<TokenizerData>();
  const uint32_t kind = r.u32();
  if (kind != 1 && kind != 2) r.fail("unknown tokenizer kind " + std::to_string(kind));
  d->kind = static_cast<TokenizerKind>(kind);
  const uint32_t flags = r.u32();
  d->ignore_merges = flags & kIgnoreMerges;
  d->add_dummy_prefix = flags & kDummyPrefix;
  d->byte_fallback = flags & kByteFallback;
  d->add_bos = flags & kAddBos;
  d->add_eos = flags & kAddEos;
  d->nfc = flags & kNfc;
  d->dummy_prefix_every_segment = flags & kPrefixEverySegment;
  d->remove_extra_whitespaces = flags & kRemoveExtraWhitespaces;
  d->bos = r.i32(), d->eos = r.i32(), d->unk = r.i32(), d->pad = r.i32();
  const uint32_t n = r.count(9);
  if (n == 0) r.fail("empty vocabulary");
  d->pieces.reserve(n), d->scores.reserve(n), d->types.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    d->pieces.push_back(r.str());
    d->scores.push_back(r.f32());
    uint8_t t;
    r.bytes(&t, 1);
    if (t < 1 || t > 6) r.fail("piece " + std::to_string(i) + " has unknown type " + std::to_string(t));
    d->types.push_back(static_cast<PieceType>(t));
  }
  auto valid = [&](int32_t id) { return id >= 0 && static_cast<uint32_t>(id) < n; };
  for (int32_t* id : {&d->bos, &d->eos, &d->unk, &d->pad})
    if (*id != -1 && !valid(*id)) r.fail("special token id " + std::to_string(*id) + " outside the vocabulary");
  const uint32_t m = r.count(8);
  d->merges.reserve(m);
  for (uint32_t i = 0; i < m; ++i) {
    const int32_t a = r.i32(), b = r.i32();
    if (!valid(a) || !valid(b)) r.fail("merge " + std::to_string(i) + " names ids outside the vocabulary");
    d->merges.emplace_back(a, b);
  }
  d->pretokenizer_regex = r.str();
  const uint32_t e = r.count(4);
  for (uint32_t i = 0; i < e; ++i) {
    const int32_t id = r.i32();
    if (!valid(id)) r.fail("eos id outside the vocabulary");
    d->extra_eos.push_back(id);
  }
  d->chat_template = r.str();
  if (!r.at_end()) r.fail("trailing bytes");
  if (d->kind == TokenizerKind::ByteLevel && d->pretokenizer_regex.empty()) r.fail("byte-level tokenizer without a split pattern");
  validate_tokenizer_data(*d, file, static_cast<int64_t>(blob_offset));
  return d;
}

std::shared_ptr<const TokenizerData> deserialize_tokenizer(const ModelFile& file) {
  return deserialize_tokenizer(file.tokenizer_blob(), file.path(), file.tokenizer_offset());
}

}  // namespace qrun
