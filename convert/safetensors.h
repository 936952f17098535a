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

enum class SafeDType { F32, F16, BF16 };

struct SafeTensor {
  std::string name;
  SafeDType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
  uint64_t size;
  std::string file;   // for error messages

  int64_t numel() const;   // throws qrun::Error naming the tensor when it overflows int64
  // Converts elements [begin, begin+n) to f32.
  void read_f32(int64_t begin, int64_t n, float* out) const;
};

class SafetensorsCheckpoint {
 public:
  // dir holds model.safetensors, or model.safetensors.index.json and its shards.
  explicit SafetensorsCheckpoint(const std::filesystem::path& dir);

  const SafeTensor* find(const std::string& name) const;
  const std::map<std::string, SafeTensor>& tensors() const { return tensors_; }

 private:
  void add_file(const std::filesystem::path& file);

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, SafeTensor> tensors_;
};

}  // namespace qrun
