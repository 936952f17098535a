// Scalar dequantization of ggml tensor types (llama.cpp's block formats), for GGUF
// import: the converter turns a GGUF tensor it cannot carry over bit for bit into f32
// rows and re-quantizes them to qrun's types.
#pragma once

#include <cstdint>

namespace qrun {

// True when gguf_dequantize_row handles the type.
bool gguf_can_dequantize(uint32_t ggml_type);

// Dequantizes n elements (a whole number of the type's blocks) from in to out.
// Handles F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
// IQ4_NL, MXFP4.
// Calling it with another type is a programming error (checked with
// gguf_can_dequantize first).
void gguf_dequantize_row(uint32_t ggml_type, const uint8_t* in, int64_t n, float* out);

}  // namespace qrun
