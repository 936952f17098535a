// Element types of tensors in a qrun model file, and their block geometry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qrun {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  BF16 = 2,
  Q8 = 3,  // blocks of 32: f16 scale + 32 x int8                      = 34 bytes, 8.5 bits/weight
  Q4 = 4,  // blocks of 32: f16 scale + 16 bytes of unsigned 4-bit codes = 18 bytes, 4.5 bits/weight
};

inline constexpr int64_t kQuantBlock = 32;  // elements per Q8/Q4 block

inline bool dtype_is_known(uint32_t v) { return v <= static_cast<uint32_t>(DType::Q4); }
inline bool dtype_is_quantized(DType t) { return t == DType::Q8 || t == DType::Q4; }

// Elements per storage block and bytes per block.
inline constexpr int64_t dtype_block_elems(DType t) { return (t == DType::Q8 || t == DType::Q4) ? kQuantBlock : 1; }
inline constexpr int64_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::Q8: return 34;
    case DType::Q4: return 18;
  }
  return 0;
}

// Bytes of one row of `cols` elements. Quantized rows are padded with zeros to a whole
// number of blocks (docs/format.md: row padding), so every row starts on a block boundary.
inline constexpr int64_t dtype_row_bytes(DType t, int64_t cols) {
  const int64_t be = dtype_block_elems(t);
  return (cols + be - 1) / be * dtype_block_bytes(t);
}

std::string_view dtype_name(DType t);
bool dtype_from_name(std::string_view name, DType* out);

}  // namespace qrun
