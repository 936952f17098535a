// Compute kernels used by the forward pass. Each is a Highway kernel with dynamic
// dispatch (simd/*.cpp) and has a scalar twin in simd/reference.h that tests compare
// it against. Matrices are row-major, one row per output element, rows as in
// quant/block_formats.h; `cols` need not be a multiple of 32 (rows are padded).
#pragma once

#include <cstdint>

#include "qrun/dtype.h"
#include "qrun/kv_type.h"

namespace qrun {

// Activations quantized to int8 per block of 32, for Q8/Q4 weight dot products.
// sum = sum of qs (lets Q4 fold its -8 code offset in once per block).
struct BlockQ8A {
  float d;
  int32_t sum;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8A) == 40);

// Number of BlockQ8A needed for a vector of n elements.
inline int64_t q8a_blocks(int64_t n) { return (n + 31) / 32; }

// x[n] -> ceil(n/32) blocks (tail zero-padded).
void quantize_activations(const float* x, int64_t n, BlockQ8A* out);

// Activations quantized to 15 bits per block of 32, for Q8 weights, whose accuracy int8
// activations limit. Element j is d * (128 * hi[j] + lo[j]), hi in [-127, 127], lo in
// [-64, 63]: the kernels take the same u8 x s8 products of the two bytes and combine
// them as 128 * hi_dot + lo_dot (128, not 256: lo then never is -128, which AVX2's sign
// trick cannot negate). sum = sum of 128 * hi[j] + lo[j].
struct BlockQ16A {
  float d;
  int32_t sum;
  int8_t hi[32];
  int8_t lo[32];
};
static_assert(sizeof(BlockQ16A) == 72);

void quantize_activations_i16(const float* x, int64_t n, BlockQ16A* out);

// y[r] = dot(W row r, x) for r in [0, rows). W rows have `cols` elements of type t.
// For Q8/Q4 weights xq must hold quantize_activations(x); for F32/F16/BF16 weights x is used.
void matvec(DType t, const void* w, int64_t rows, int64_t cols,
            const float* x, const BlockQ8A* xq, float* y);

// The batched kernels take tokens this many at a time (the rest one tile narrower): a
// batch of a multiple of it reads the weights once per tile, 3 or 5 tokens read them twice.
inline constexpr int kTileTokens = 4;

// Batched: Y[i*ldy + r] = dot(W row r, X[i]) for tokens i in [0, n), rows r in [0, rows).
// X is n x cols floats (row stride cols); XQ is n x q8a_blocks(cols) blocks.
// Each weight block is loaded once and reused for many tokens.
void matmul(DType t, const void* w, int64_t rows, int64_t cols, int64_t n,
            const float* x, const BlockQ8A* xq, float* y, int64_t ldy);

// matmul for Q8 weights and 16-bit activations (n = 1 is the matvec).
void matmul_i16(const void* w, int64_t rows, int64_t cols, int64_t n, const BlockQ16A* xq, float* y, int64_t ldy);
// Whether the chosen target multiplies 16-bit activations in one pass over the weights
// (AVX3_DL); the others take two int8 products per weight.
bool fused_i16_activations();

// out[i] = in[i] widened to f32, for F16 or BF16 rows.
void widen_row_to_f32(DType t, const void* in, int64_t n, float* out);

// Elementwise and reduction kernels on f32.
void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps);
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float* y, float a, const float* x, int64_t n);   // y += a * x
void add_f32(float* y, const float* x, int64_t n);             // y += x
void swiglu(float* gate, const float* up, int64_t n);          // gate = silu(gate) * up
void geglu_tanh(float* gate, const float* up, int64_t n);      // gate = gelu_tanh(gate) * up (Gemma)
// gpt-oss: g = min(gate, limit), u = clamp(up, -limit, limit), gate = g sigmoid(1.702 g) (u + 1).
void swiglu_clamped(float* gate, const float* up, int64_t n, float limit);
void softmax(float* x, int64_t n);                             // in place, numerically stable
// The KV cache is stored in f16.
void f32_to_f16_row(const float* x, uint16_t* out, int64_t n);

// Keys per tile of attend's online softmax; its scratch is one tile of floats per head.
inline constexpr int kAttentionTile = 64;

// One head's cached keys or values at consecutive positions, as the KV cache stores
// them (qrun/kv_type.h): position t's head_dim values start at data + t * stride.
struct KvRows {
  const uint8_t* data;
  int64_t stride;  // bytes
  KvType type;
};

// Query heads one attend call takes: those of a KV group (GQA), or a share of them.
inline constexpr int kMaxAttendHeads = 8;

// For each of `heads` query heads (q and out hold them one after another, head_dim
// floats each): out[head_dim] = sum_t softmax_t(s_t) V_t over t in [0, n_keys), with
// s_t = scale * (q . K_t) (scale 0: 1 / sqrt(head_dim)), soft-capped to
// softcap * tanh(s_t / softcap) when softcap > 0 (Gemma 2). The heads share k and v, so
// each cached row is read from memory once for all of them.
// Scratch memory is `tile` (heads * kAttentionTile floats), whatever n_keys is.
struct AttendArgs {
  const float* q;
  int64_t heads;  // 1 .. kMaxAttendHeads
  KvRows k, v;
  int64_t n_keys, head_dim;
  float* out;
  float* tile;
  float scale = 0.0f, softcap = 0.0f;
  const float* sinks = nullptr;  // per head: a logit that joins the softmax's denominator only (gpt-oss)
  // Per row ("head"): it sees keys [0, key_ends[h]) only, 1 <= key_ends[h] <= n_keys; null:
  // all n_keys. Rows of several prompt tokens share a call, each causal.
  const int64_t* key_ends = nullptr;
};
void attend(const AttendArgs& args);

// Name of the SIMD target chosen at run time (e.g. "AVX3_ZEN4", "AVX2", "AVX2+VNNI": its
// int8 kernels with vpdpbusd, simd/int8_vnni.h).
const char* simd_target_name();

}  // namespace qrun
