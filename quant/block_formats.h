// Quantized block formats as they lie on disk and as the kernels read them
// (docs/format.md). A row of `cols` weights is ceil(cols/32) consecutive blocks; the
// tail of the last block is zero-padded.
#pragma once

#include <cstdint>

#include "qrun/dtype.h"

namespace qrun {

// Q8: value = d * qs[i], qs in [-127, 127].
struct BlockQ8 {
  uint16_t d;        // f16 scale
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8) == 34);

// Q4: value = d * (code - 8), code in [0, 15]. Codes are unsigned so x86 u8 x s8
// dot products (maddubs, VNNI dpbusd) take them directly; the -8 offset is folded in
// afterwards with the activation block sum. Byte j holds element j in its low nibble
// and element j+16 in its high nibble, so a mask and a shift give two runs of 16.
struct BlockQ4 {
  uint16_t d;        // f16 scale
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4) == 18);

static_assert(sizeof(BlockQ8) == dtype_block_bytes(DType::Q8));
static_assert(sizeof(BlockQ4) == dtype_block_bytes(DType::Q4));

}  // namespace qrun
