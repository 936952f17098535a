// Quantized block formats as they lie on disk and as the kernels read them
// (docs/format.md). A row of `cols` weights is ceil(cols/32) consecutive blocks; the
// tail of the last block is zero-padded.
#pragma once

#include <cstdint>
#include <type_traits>

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

// Q4N: value = d * kQ4NLevels[code]. A non-uniform code book puts more levels where
// weights are dense (near 0) than uniform Q4 can: on Gaussian blocks its squared error
// is ~18% below Q4's with the same 4.5 bits. Layout and levels are GGUF's IQ4_NL, so
// such files import bit-exact. The levels are int8 so integer dot products take them.
inline constexpr int8_t kQ4NLevels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
struct BlockQ4N {
  uint16_t d;        // f16 scale
  uint8_t qs[16];    // as BlockQ4: byte j holds element j (low nibble) and j+16 (high)
};
static_assert(sizeof(BlockQ4N) == 18);

// Q6: value = d * (code - 32), code = nibble | pair << 4 in [0, 63]. qs as BlockQ4;
// qh byte j (0..7) holds the high pairs of elements j, j+8, j+16, j+24 in bits 0-1,
// 2-3, 4-5, 6-7, so one 8-byte broadcast and four shifts give them in element order.
// BlockQ6 is one block's fields; rows store them grouped by four blocks (Q6Group).
struct BlockQ6 {
  uint16_t d;
  uint8_t qs[16];
  uint8_t qh[8];
};
static_assert(sizeof(BlockQ6) == 26);

// A Q6 row is groups of four blocks (the last may hold fewer, k): the k scales, then
// the k blocks' qs, then their qh, 26k bytes. So 128 codes' nibbles fill one 64-byte
// vector and their pairs one 32-byte load, which a fixed byte permutation spreads to
// the nibbles: no 26-byte block straddles vector loads (the kernels' cost with
// interleaved blocks: q6 matvec at ~60% of q4's bytes/s on Zen 5).
struct Q6Group {
  static constexpr int64_t kBlocks = 4;
  static constexpr int64_t kBytes = kBlocks * 26;
  int64_t k;     // blocks in this group
  int64_t base;  // byte offset of the group in its row
  Q6Group(int64_t nb, int64_t b) : k(nb - b / kBlocks * kBlocks), base(b / kBlocks * kBytes) {
    if (k > kBlocks) k = kBlocks;
  }
  int64_t d(int64_t i) const { return base + 2 * i; }
  int64_t qs(int64_t i) const { return base + 2 * k + 16 * i; }
  int64_t qh(int64_t i) const { return base + 18 * k + 8 * i; }
};

// Block b of a Q6 row of nb blocks, read in place.
struct Q6BlockRef {
  uint16_t d;
  const uint8_t* qs;
  const uint8_t* qh;
};
inline Q6BlockRef q6_row_block(const uint8_t* row, int64_t nb, int64_t b) {
  const Q6Group g(nb, b);
  const int64_t i = b % Q6Group::kBlocks;
  uint16_t d;
  __builtin_memcpy(&d, row + g.d(i), 2);
  return {d, row + g.qs(i), row + g.qh(i)};
}
inline void q6_store_row_block(uint8_t* row, int64_t nb, int64_t b, const BlockQ6& blk) {
  const Q6Group g(nb, b);
  const int64_t i = b % Q6Group::kBlocks;
  __builtin_memcpy(row + g.d(i), &blk.d, 2);
  __builtin_memcpy(row + g.qs(i), blk.qs, 16);
  __builtin_memcpy(row + g.qh(i), blk.qh, 8);
}

// Block b of a row of nb blocks as the kernels read it: a reference into the row, or
// for Q6 a Q6BlockRef.
template <class Block>
decltype(auto) row_block(const uint8_t* row, int64_t nb, int64_t b) {
  if constexpr (std::is_same_v<Block, BlockQ6>)
    return q6_row_block(row, nb, b);
  else
    return (reinterpret_cast<const Block*>(row)[b]);
}

// Q5: value = d * (code - 16), code = nibble | bit << 4 in [0, 31]; bit j of the
// little-endian qh is element j's. qs as BlockQ4. Same layout as GGUF Q5_0.
struct BlockQ5 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5) == 22);

// Q3: value = d * (code - 4), code = pair | bit << 2 in [0, 7]; ql byte j (0..7) holds
// the low pairs of elements j, j+8, j+16, j+24 (as BlockQ6's qh); bit j of qh is element j's.
struct BlockQ3 {
  uint16_t d;
  uint8_t ql[8];
  uint8_t qh[4];
};
static_assert(sizeof(BlockQ3) == 14);

// Q2K: GGUF's Q2_K super-block of 256 (so such files import bit-exact). Element e has
// sub-block s = e / 16 with scale sc = scales[s] & 15 and minimum m = scales[s] >> 4:
// value = d * sc * code - dmin * m, code in [0, 3]. Codes of elements 128h + 32j + l
// (h < 2, j < 4, l < 32) lie in bits 2j, 2j+1 of qs[32h + l], so each run of 32
// (one activation block) is 32 consecutive bytes shifted by 2j. Four bits of scale
// and of minimum per 16 weights adapt the 4 levels to each sub-block's range, which
// per-32 symmetric 2-bit codes cannot (measured: 30-45% more squared error on
// stories260K's weights); the f16 d and dmin are shared by 256 weights.
struct BlockQ2K {
  uint8_t scales[16];
  uint8_t qs[64];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2K) == 84);

static_assert(sizeof(BlockQ8) == dtype_block_bytes(DType::Q8));
static_assert(sizeof(BlockQ4) == dtype_block_bytes(DType::Q4));
static_assert(sizeof(BlockQ4N) == dtype_block_bytes(DType::Q4N));
static_assert(sizeof(BlockQ6) == dtype_block_bytes(DType::Q6));
static_assert(sizeof(BlockQ5) == dtype_block_bytes(DType::Q5));
static_assert(sizeof(BlockQ3) == dtype_block_bytes(DType::Q3));
static_assert(sizeof(BlockQ2K) == dtype_block_bytes(DType::Q2K));

// The code fields, element j (0..31) of a block: a nibble as BlockQ4::qs, a pair as
// BlockQ6::qh, a bit as BlockQ5::qh.
inline int nibble_field(const uint8_t* qs, int j) { return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4); }
inline int pair_field(const uint8_t* q, int j) { return (q[j % 8] >> (2 * (j / 8))) & 3; }
inline int bit_field(const uint8_t* q, int j) { return (q[j / 8] >> (j % 8)) & 1; }

// Code j of a block, unsigned, as the formulas above read it.
inline int block_code(const BlockQ4& b, int j) { return nibble_field(b.qs, j); }
inline int block_code(const BlockQ4N& b, int j) { return nibble_field(b.qs, j); }
inline int block_code(const Q6BlockRef& b, int j) { return nibble_field(b.qs, j) | pair_field(b.qh, j) << 4; }
inline int block_code(const BlockQ5& b, int j) { return nibble_field(b.qs, j) | bit_field(b.qh, j) << 4; }
inline int block_code(const BlockQ3& b, int j) { return pair_field(b.ql, j) | bit_field(b.qh, j) << 2; }
// The int8 value a code stands for (times d): code - offset, or the code book's level.
inline int block_value(const BlockQ4& b, int j) { return block_code(b, j) - 8; }
inline int block_value(const BlockQ4N& b, int j) { return kQ4NLevels[block_code(b, j)]; }
inline int block_value(const Q6BlockRef& b, int j) { return block_code(b, j) - 32; }
inline int block_value(const BlockQ5& b, int j) { return block_code(b, j) - 16; }
inline int block_value(const BlockQ3& b, int j) { return block_code(b, j) - 4; }
inline int block_value(const BlockQ8& b, int j) { return b.qs[j]; }

// Element e (0..255) of a Q2K super-block: its code, and its sub-block's scale and minimum.
inline int q2k_code(const BlockQ2K& b, int e) { return (b.qs[e / 128 * 32 + e % 32] >> (2 * (e % 128 / 32))) & 3; }
inline int q2k_scale(const BlockQ2K& b, int e) { return b.scales[e / 16] & 15; }
inline int q2k_min(const BlockQ2K& b, int e) { return b.scales[e / 16] >> 4; }

}  // namespace qrun
