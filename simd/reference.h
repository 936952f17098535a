// Plain scalar twins of simd/kernels.h: obviously correct, used by tests as the reference.
#pragma once

#include <cstdint>

#include "simd/kernels.h"

namespace qrun::ref {

void quantize_activations(const float* x, int64_t n, BlockQ8A* out);
void matvec(DType t, const void* w, int64_t rows, int64_t cols,
            const float* x, const BlockQ8A* xq, float* y);
void matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n,
            const float* x, const BlockQ8A* xq, float* y, int64_t ldy);
void quantize_activations_i16(const float* x, int64_t n, BlockQ16A* out);
void matmul_i16(const void* w, int64_t rows, int64_t cols, int64_t n, const BlockQ16A* xq, float* y, int64_t ldy);
void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps);
float dot_f32(const float* a, const float* b, int64_t n);
void swiglu(float* gate, const float* up, int64_t n);
void geglu_tanh(float* gate, const float* up, int64_t n);
void swiglu_clamped(float* gate, const float* up, int64_t n, float limit);
void softmax(float* x, int64_t n);
// Plain softmax over all scores in double, one head at a time: no tiles, no online
// rescaling.
void attend(const AttendArgs& args);

}  // namespace qrun::ref
