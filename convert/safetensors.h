// Reads Hugging Face safetensors checkpoints (one file, or shards listed in
// model.safetensors.index.json) through mmap; tensors are converted row by row, never
// copied whole. Every header field is checked against the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "qrun/mapped_file.h"

namespace qrun {

// U8: raw bytes, weights only as half of an MXFP4 pair. MXFP4: OpenAI's packed experts,
// "X_blocks" [..., groups, 16] (two 4-bit E2M1 codes per byte, the low nibble first) and
// "X_scales" [..., groups] (E8M0 exponents, bias 127), presented as one tensor "X" of
// shape [..., groups * 32].
enum class SafeDType { F32, F16, BF16, U8, MXFP4 };

// "[2048, 5632]": a shape as error messages print it.
std::string shape_text(const std::vector<int64_t>& shape);

struct SafeTensor {
  std::string name;
  SafeDType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
  uint64_t size;
  std::string file;   // for error messages
  const uint8_t* scales = nullptr;  // MXFP4: one exponent per 32 elements

  int64_t numel() const;   // throws qrun::Error naming the tensor when it overflows int64
  // Converts elements [begin, begin+n) to f32.
  void read_f32(int64_t begin, int64_t n, float* out) const;
};

class SafetensorsCheckpoint {
 public:
  // dir holds model.safetensors, or model.safetensors.index.json and its shards; or
  // `dir` is one .safetensors file (a LoRA adapter's adapter_model.safetensors).
  explicit SafetensorsCheckpoint(const std::filesystem::path& dir);

  const SafeTensor* find(const std::string& name) const;
  const std::map<std::string, SafeTensor>& tensors() const { return tensors_; }

 private:
  void add_file(const std::filesystem::path& file);
  void pair_mxfp4_tensors();

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, SafeTensor> tensors_;
};

}  // namespace qrun
