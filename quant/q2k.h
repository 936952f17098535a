// Q2K (GGUF Q2_K) super-blocks: quantization with a per-sub-block range search and
// dequantization. quantize_row / dequantize_row dispatch here.
#pragma once

#include <cstdint>

#include "quant/block_formats.h"

namespace qrun {

// n floats into ceil(n / 256) super-blocks, the tail zero-padded. importance: n weights
// >= 0 or nullptr (all 1), as in quantize_row.
void quantize_q2k(const float* x, int64_t n, const float* importance, BlockQ2K* out);
void dequantize_q2k(const BlockQ2K* in, int64_t n, float* out);

}  // namespace qrun
