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
  Q4N = 5,  // blocks of 32: f16 scale + 16 bytes of 4-bit indices into a non-uniform code book (= GGUF IQ4_NL), 4.5
  Q2K = 9,  // super-blocks of 256: 16 x (4-bit scale, 4-bit min) + 64 bytes 2-bit codes + f16 d, dmin (= GGUF Q2_K) = 84 bytes, 2.625
  // Blocks of 32 with their bits split over two fields, stored in groups of four blocks
  // (quant/block_formats.h: BlockGroup):
  Q6 = 10,  // f16 scale + 16 bytes low nibbles + 8 bytes high 2-bit pairs = 26 bytes, 6.5 bits/weight
  Q5 = 11,  // f16 scale + 16 bytes low nibbles + 4 bytes high bits = 22 bytes, 5.5
  Q3 = 12,  // f16 scale + 8 bytes low 2-bit pairs + 4 bytes high bits = 14 bytes, 3.5
  Mx4 = 13,  // Q4N's blocks with MXFP4's code book (E2M1 values) and power-of-two scales: OpenAI's gpt-oss experts exactly, 4.5
};

// Ids 6, 7 and 8 were q6, q5 and q3 with their blocks interleaved, before the grouped
// layout (2026-12-03); files with them are refused with a request to convert again.
inline constexpr bool dtype_is_retired(uint32_t v) { return v >= 6 && v <= 8; }

// Elements per block of every quantized type but Q2K, and per activation block: the
// kernels work in runs of 32 (a Q2K super-block is 8 such runs).
inline constexpr int64_t kQuantBlock = 32;
inline constexpr int64_t kSuperBlock = 256;  // elements per Q2K super-block

inline constexpr bool dtype_is_known(uint32_t v) { return v <= static_cast<uint32_t>(DType::Mx4) && !dtype_is_retired(v); }
inline constexpr bool dtype_is_quantized(DType t) {
  return t != DType::F32 && t != DType::F16 && t != DType::BF16;
}

// Elements per storage block and bytes per block.
inline constexpr int64_t dtype_block_elems(DType t) {
  return t == DType::Q2K ? kSuperBlock : dtype_is_quantized(t) ? kQuantBlock : 1;
}
inline constexpr int64_t dtype_block_bytes(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::Q8: return 34;
    case DType::Q4: return 18;
    case DType::Q4N: return 18;
    case DType::Mx4: return 18;
    case DType::Q6: return 26;
    case DType::Q5: return 22;
    case DType::Q3: return 14;
    case DType::Q2K: return 84;
  }
  return 0;
}

// Bytes of one row of `cols` elements. Quantized rows are padded with zeros to a whole
// number of blocks (docs/format.md: row padding), so every row starts on a block boundary.
inline constexpr int64_t dtype_row_bytes(DType t, int64_t cols) {
  const int64_t be = dtype_block_elems(t);
  return (cols + be - 1) / be * dtype_block_bytes(t);
}

// Bits per weight of a type's blocks (4.5 for Q4).
inline constexpr double dtype_bits_per_weight(DType t) {
  return 8.0 * static_cast<double>(dtype_block_bytes(t)) / static_cast<double>(dtype_block_elems(t));
}

std::string_view dtype_name(DType t);
bool dtype_from_name(std::string_view name, DType* out);

}  // namespace qrun
