// Reads a GGUF file (llama.cpp's model format, version 2 and 3) from a read-only
// mapping. GGUF files come from anyone, so every count, string length, array size,
// tensor shape, offset and extent is checked against the bytes that remain before it
// is used (the GGUF heap overflows of 2024 and CVE-2025-53630 came from unchecked
// ones), and size arithmetic is done overflow-checked in 64 bits. A bad file gives a
// qrun::Error naming the file, the byte offset and the field.
//
// Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv
// (key string, u32 value type, value), then n_tensors (name string, u32 n_dims,
// u64 ne[n_dims], u32 ggml type, u64 offset relative to the data section), then the
// data section at the next multiple of general.alignment (default 32).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "qrun/mapped_file.h"

namespace qrun {

enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9,
  U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_value_type_name(uint32_t t);

// ggml tensor types this reader knows the block geometry of.
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, IQ4_NL = 20,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30, MXFP4 = 39,
};
// "Q4_K", or "type 16" for one without geometry here.
std::string ggml_type_name(uint32_t t);
// Elements per block and bytes per block; false for a type this reader does not know.
bool ggml_type_geometry(uint32_t t, int64_t* block_elems, int64_t* block_bytes);

struct GgufKV {
  std::string key;
  uint64_t offset = 0;            // file offset of the value type field
  GgufValueType type{};
  // Scalars (numbers and bool): the value as both integer (when integral) and double.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string_view str;           // String: a view into the mapping
  // Array: element type and count; numeric elements lie raw at data_offset;
  // string elements are views into the mapping.
  GgufValueType elem_type{};
  uint64_t count = 0;
  uint64_t data_offset = 0;
  std::vector<std::string_view> strings;
};

struct GgufTensorInfo {
  std::string name;
  uint64_t info_offset = 0;       // where its tensor info starts (for messages)
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};   // ne[0] innermost (elements per row)
  uint32_t type = 0;              // GgmlType
  uint64_t offset = 0;            // absolute file offset of the first byte
  uint64_t size = 0;              // bytes
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);               // maps the file, then parses
  GgufFile(const uint8_t* data, uint64_t size, std::string name);  // parses caller-owned bytes

  const std::string& path() const { return name_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::vector<GgufKV>& kvs() const { return kvs_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const uint8_t* bytes() const { return data_; }
  uint64_t size() const { return size_; }

  const GgufKV* find(std::string_view key) const;
  const GgufTensorInfo* tensor(std::string_view name) const;
  const uint8_t* tensor_data(const GgufTensorInfo& t) const { return data_ + t.offset; }

  // Typed access. Each throws Error(file, offset of the key, ...) naming the key when
  // the value has the wrong type or is out of range; the *_or forms return the
  // fallback when the key is absent.
  uint64_t get_uint(std::string_view key) const;               // any integer type, >= 0
  uint64_t get_uint_or(std::string_view key, uint64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;   // any numeric type
  bool get_bool_or(std::string_view key, bool fallback) const;
  std::string get_string(std::string_view key) const;
  std::string get_string_or(std::string_view key, const std::string& fallback) const;
  const std::vector<std::string_view>& get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;     // any numeric element type
  std::vector<int64_t> get_int_array(std::string_view key) const;     // any integer element type

  [[noreturn]] void fail(uint64_t offset, const std::string& why) const;

 private:
  void parse();
  MappedFile map_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKV> kvs_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace qrun
