// Reference (scalar) conversions between f32 and every storage type. The converter
// uses these to write files; tests use them as ground truth for the SIMD kernels.
#pragma once

#include <cstdint>

#include "qrun/dtype.h"
#include "quant/block_formats.h"

namespace qrun {

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);     // round to nearest even
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);    // round to nearest even

// Quantize one row of n floats into dtype_row_bytes(t, n) bytes at out (tail zero-padded).
// Defined for every input: in quantized types a NaN is stored as 0 and infinities
// saturate (the converter refuses non-finite weights, naming the tensor, before this).
// importance: n weights >= 0 for the scale search (quant/scale_search.h), or nullptr.
void quantize_row(DType t, const float* x, int64_t n, void* out, const float* importance = nullptr);
// Dequantize one row of n elements stored as type t.
void dequantize_row(DType t, const void* in, int64_t n, float* out);

}  // namespace qrun
