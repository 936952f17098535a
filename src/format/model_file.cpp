#include "qrun/model_file.h"

#include <xxhash.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <unordered_map>

#include "qrun/error.h"
#include "qrun/model_layout.h"

namespace qrun {

namespace {

// a + b <= limit without overflow.
bool fits(uint64_t offset, uint64_t size, uint64_t limit) {
  return offset <= limit && size <= limit - offset;
}

bool is_pow2(uint64_t v) { return v && (v & (v - 1)) == 0; }

}  // namespace

ModelFile::ModelFile(const std::string& path, LoadMode mode) : file_(path, mode) {
  validate_header();
  validate_tensors();
  validate_layers();
  validate_tensor_set();
}

void ModelFile::fail(int64_t offset, const std::string& reason) const {
  throw Error(file_.path(), offset, reason);
}

void ModelFile::validate_header() {
  const uint64_t size = file_.size();
  if (size < sizeof(format::FileHeader)) fail(0, "file too small to be a qrun model (" + std::to_string(size) + " bytes)");
  std::memcpy(&header_, file_.data(), sizeof header_);
  const auto& h = header_;
  if (std::memcmp(h.magic, format::kMagic, sizeof h.magic) != 0) fail(0, "bad magic: not a qrun model file");
  if (h.version != format::kVersion)
    fail(8, "unsupported format version " + std::to_string(h.version) + " (this build reads version " +
                std::to_string(format::kVersion) + ")");
  if (h.header_size != sizeof(format::FileHeader)) fail(12, "bad header size " + std::to_string(h.header_size));
  if (h.file_size != size)
    fail(16, "file is " + std::to_string(size) + " bytes but its header says " + std::to_string(h.file_size) +
                 (size < h.file_size ? " (truncated)" : " (trailing bytes)"));
  if (!is_pow2(h.alignment) || h.alignment < 4096 || h.alignment > (1u << 24))
    fail(24, "bad alignment " + std::to_string(h.alignment));
  if (h.hparams_offset < sizeof(format::FileHeader) ||
      (h.hparams_size != sizeof(format::HParams) && h.hparams_size != format::kHParamsSizeV1) ||
      !fits(h.hparams_offset, h.hparams_size, h.data_offset))
    fail(32, "hyper-parameter section out of bounds");
  // Offsets in messages are those of the header field at fault.
  using format::FileHeader;
  if (h.n_tensors == 0 || h.n_tensors > format::kMaxTensors)
    fail(offsetof(FileHeader, n_tensors), "bad tensor count " + std::to_string(h.n_tensors));
  if (h.n_layers > format::kMaxLayers) fail(offsetof(FileHeader, n_layers), "bad layer count " + std::to_string(h.n_layers));
  if (h.tensors_offset < sizeof(format::FileHeader) ||
      !fits(h.tensors_offset, uint64_t{h.n_tensors} * sizeof(format::TensorEntry), h.data_offset))
    fail(64, "tensor table out of bounds");
  if (h.layers_offset < sizeof(format::FileHeader) ||
      !fits(h.layers_offset, uint64_t{h.n_layers} * sizeof(format::LayerRange), h.data_offset))
    fail(72, "layer table out of bounds");
  if (h.tokenizer_offset < sizeof(format::FileHeader) || !fits(h.tokenizer_offset, h.tokenizer_size, h.data_offset))
    fail(48, "tokenizer section out of bounds");
  if (h.data_offset > size || h.data_offset % h.alignment != 0)
    fail(offsetof(FileHeader, data_offset), "data offset out of bounds or misaligned");
  const uint64_t sum = XXH3_64bits(file_.data() + sizeof(format::FileHeader), h.data_offset - sizeof(format::FileHeader));
  if (sum != h.meta_checksum) fail(offsetof(FileHeader, meta_checksum), "metadata checksum mismatch (file corrupt)");
  hparams_ = format::HParams{};
  std::memcpy(&hparams_, file_.data() + h.hparams_offset, h.hparams_size);
  validate_hparams(hparams_, file_.path(), static_cast<int64_t>(h.hparams_offset));
  if (hparams_.n_layers != h.n_layers)
    fail(offsetof(FileHeader, n_layers), "header has " + std::to_string(h.n_layers) + " layers but hyper-parameters say " +
                 std::to_string(hparams_.n_layers));
}

void ModelFile::validate_tensors() {
  const auto& h = header_;
  tensors_.reserve(h.n_tensors);
  std::unordered_map<std::string, size_t> seen;
  for (uint32_t i = 0; i < h.n_tensors; ++i) {
    const uint64_t at = h.tensors_offset + uint64_t{i} * sizeof(format::TensorEntry);
    const auto where = static_cast<int64_t>(at);
    format::TensorEntry e;
    std::memcpy(&e, file_.data() + at, sizeof e);
    const char* end = static_cast<const char*>(std::memchr(e.name, 0, sizeof e.name));
    if (!end || end == e.name) fail(where, "tensor " + std::to_string(i) + ": name empty or not NUL-terminated");
    std::string name(static_cast<const char*>(e.name), end);
    const std::string what = "tensor '" + name + "': ";
    if (dtype_is_retired(e.dtype)) {
      static constexpr const char* kWas[] = {"q6", "q5", "q3"};
      fail(where, what + "element type " + std::to_string(e.dtype) + " is " + kWas[e.dtype - 6] +
                      " in the layout before 2026-12-03; convert the model again with this qconvert");
    }
    if (!dtype_is_known(e.dtype)) fail(where, what + "unknown element type " + std::to_string(e.dtype));
    const auto t = static_cast<DType>(e.dtype);
    if (e.n_dims < 1 || e.n_dims > 2) fail(where, what + "bad number of dimensions " + std::to_string(e.n_dims));
    if (e.ne[0] == 0 || e.ne[1] == 0 || e.ne[0] > (1ull << 32) || e.ne[1] > (1ull << 32) || (e.n_dims == 1 && e.ne[1] != 1))
      fail(where, what + "bad shape");
    const uint64_t row = static_cast<uint64_t>(dtype_row_bytes(t, static_cast<int64_t>(e.ne[0])));
    if (e.size != row * e.ne[1])
      fail(where, what + "size " + std::to_string(e.size) + " does not match shape [" + std::to_string(e.ne[0]) + ", " +
                      std::to_string(e.ne[1]) + "] of type " + std::string(dtype_name(t)) + " (" +
                      std::to_string(row * e.ne[1]) + " bytes)");
    if (e.offset % h.alignment != 0) fail(where, what + "offset " + std::to_string(e.offset) + " is not aligned");
    if (e.offset < h.data_offset || !fits(e.offset, e.size, file_.size()))
      fail(where, what + "data [" + std::to_string(e.offset) + ", +" + std::to_string(e.size) + ") lies outside the file");
    if (e.layer < -1 || e.layer >= static_cast<int32_t>(h.n_layers)) fail(where, what + "bad layer " + std::to_string(e.layer));
    if (!seen.emplace(name, i).second) fail(where, what + "duplicate name");
    tensors_.push_back({std::move(name), t, static_cast<int64_t>(e.ne[0]), static_cast<int64_t>(e.ne[1]), e.layer,
                        e.offset, e.size, e.checksum, file_.data() + e.offset});
  }
  // Overlaps: sort by offset and compare neighbours.
  std::vector<const TensorView*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* a = by_offset[i - 1];
    const auto* b = by_offset[i];
    if (a->offset + a->size > b->offset)
      fail(static_cast<int64_t>(b->offset), "tensors '" + a->name + "' and '" + b->name + "' overlap");
  }
}

void ModelFile::validate_layers() {
  const auto& h = header_;
  layers_.resize(h.n_layers);
  std::memcpy(layers_.data(), file_.data() + h.layers_offset, layers_.size() * sizeof(format::LayerRange));
  for (uint32_t l = 0; l < h.n_layers; ++l) {
    const auto& r = layers_[l];
    const auto where = static_cast<int64_t>(h.layers_offset + l * sizeof(format::LayerRange));
    const std::string what = "layer " + std::to_string(l) + ": ";
    if (r.offset % h.alignment != 0 || r.size % h.alignment != 0) fail(where, what + "range is not aligned");
    if (r.offset < h.data_offset || !fits(r.offset, r.size, file_.size())) fail(where, what + "range lies outside the file");
    for (const auto& t : tensors_) {
      const bool inside = t.offset >= r.offset && t.offset + t.size <= r.offset + r.size;
      if ((t.layer == static_cast<int>(l)) != inside)
        fail(where, what + "range does not hold exactly its tensors (tensor '" + t.name + "')");
    }
  }
}

void ModelFile::validate_tensor_set() {
  const auto specs = expected_tensors(hparams_);
  for (const auto& s : specs) {
    const TensorView* t = find(s.name);
    if (!t) fail(-1, "missing tensor '" + s.name + "' required by the " + std::string(arch_name(hparams_.arch)) + " architecture");
    if (t->cols != s.cols || t->rows != s.rows || t->layer != s.layer)
      fail(static_cast<int64_t>(t->offset), "tensor '" + s.name + "' has shape [" + std::to_string(t->cols) + ", " +
                                                std::to_string(t->rows) + "] but the hyper-parameters require [" +
                                                std::to_string(s.cols) + ", " + std::to_string(s.rows) + "]");
    if (s.role == TensorRole::Norm || s.role == TensorRole::Bias) {
      if (t->dtype != DType::F32) fail(static_cast<int64_t>(t->offset), "tensor '" + s.name + "' must be f32");
    }
  }
  if (specs.size() != tensors_.size())
    fail(-1, "file has " + std::to_string(tensors_.size()) + " tensors but the architecture has " +
                 std::to_string(specs.size()));
}

std::span<const uint8_t> ModelFile::tokenizer_blob() const {
  return {file_.data() + header_.tokenizer_offset, header_.tokenizer_size};
}

const TensorView* ModelFile::find(const std::string& name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorView& ModelFile::get(const std::string& name) const {
  const TensorView* t = find(name);
  if (!t) fail(-1, "missing tensor '" + name + "'");
  return *t;
}

void ModelFile::verify_checksums() const {
  for (const auto& t : tensors_) {
    if (XXH3_64bits(t.data, t.size) != t.checksum)
      fail(static_cast<int64_t>(t.offset), "tensor '" + t.name + "': checksum mismatch (file corrupt)");
  }
}

}  // namespace qrun
