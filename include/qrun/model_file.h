// A validated, mapped qrun model file (docs/format.md). Opening it checks the whole
// header against the file before anything is used; tensors point into the mapping.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qrun/dtype.h"
#include "qrun/format.h"
#include "qrun/mapped_file.h"

namespace qrun {

struct TensorView {
  std::string name;
  DType dtype;
  int64_t cols;        // ne[0]
  int64_t rows;        // ne[1]
  int layer;           // -1 for global tensors
  uint64_t offset;     // in the file
  uint64_t size;       // bytes
  uint64_t checksum;
  const uint8_t* data;

  int64_t row_bytes() const { return dtype_row_bytes(dtype, cols); }
};

class ModelFile {
 public:
  ModelFile(const std::string& path, LoadMode mode = LoadMode::Mmap);

  const std::string& path() const { return file_.path(); }
  const format::HParams& hparams() const { return hparams_; }
  std::span<const TensorView> tensors() const { return tensors_; }
  std::span<const format::LayerRange> layers() const { return layers_; }
  std::span<const uint8_t> tokenizer_blob() const;
  uint64_t tokenizer_offset() const { return header_.tokenizer_offset; }
  const format::FileHeader& header() const { return header_; }
  const MappedFile& mapping() const { return file_; }

  const TensorView* find(const std::string& name) const;
  const TensorView& get(const std::string& name) const;  // throws naming the tensor

  // Reads every tensor and compares its XXH3-64; throws on the first mismatch.
  void verify_checksums() const;

 private:
  void validate_header();
  void validate_tensors();
  void validate_layers();
  void validate_tensor_set();
  [[noreturn]] void fail(int64_t offset, const std::string& reason) const;

  MappedFile file_;
  format::FileHeader header_{};
  format::HParams hparams_{};
  std::vector<TensorView> tensors_;
  std::vector<format::LayerRange> layers_;
};

}  // namespace qrun
