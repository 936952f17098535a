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

// Mx4: OpenAI's MXFP4 (E2M1 codes: sign, 2 exponent bits, 1 mantissa bit; one power-of-two
// scale per 32) in Q4N's layout, value = d * kMx4Levels[code]: the E2M1 values doubled so
// the levels are integers, d = 2^(exponent - 1) as f16. gpt-oss's experts convert to it
// exactly (blocks whose exponent is below f16's range, values under 2^-21, read as 0).
inline constexpr int8_t kMx4Levels[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
struct BlockMx4 {
  uint16_t d;        // f16 power of two
  uint8_t qs[16];    // as BlockQ4
};
static_assert(sizeof(BlockMx4) == 18);

// The code book of a code-book block type, for kernels written once for both.
template <class B> inline constexpr const int8_t* kCodeBook = nullptr;
template <> inline constexpr const int8_t* kCodeBook<BlockQ4N> = kQ4NLevels;
template <> inline constexpr const int8_t* kCodeBook<BlockMx4> = kMx4Levels;

// Q6: value = d * (code - 32), code = nibble | pair << 4 in [0, 63]. qs as BlockQ4;
// qh byte j (0..7) holds the high pairs of elements j, j+8, j+16, j+24 in bits 0-1,
// 2-3, 4-5, 6-7, so one 8-byte broadcast and four shifts give them in element order.
struct BlockQ6 {
  uint16_t d;
  uint8_t qs[16];
  uint8_t qh[8];
};
static_assert(sizeof(BlockQ6) == 26);

// Q5: value = d * (code - 16), code = nibble | bit << 4 in [0, 31]; bit j of the
// little-endian qh is element j's. qs as BlockQ4. GGUF's Q5_0 has the same fields with
// qh first; import reorders them.
struct BlockQ5 {
  uint16_t d;
  uint8_t qs[16];
  uint8_t qh[4];
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

// The split-field blocks (Q6, Q5, Q3: a scale, a low field, a high field) are each one
// block's fields; rows store them grouped by four blocks (BlockGroup).
template <class Block>
struct SplitFields;
template <>
struct SplitFields<BlockQ6> {
  static constexpr int64_t kLow = 16, kHigh = 8;
};
template <>
struct SplitFields<BlockQ5> {
  static constexpr int64_t kLow = 16, kHigh = 4;
};
template <>
struct SplitFields<BlockQ3> {
  static constexpr int64_t kLow = 8, kHigh = 4;
};
template <class Block>
concept SplitBlock = requires { SplitFields<Block>::kLow; };

// A row of split-field blocks is groups of four (the last may hold fewer, k): the k
// scales, then the k low fields, then the k high fields; a group of k blocks is
// k * sizeof(Block) bytes, so row sizes are those of the blocks and a one-block row is
// the block. 128 codes' low fields fill one vector and their high fields one more
// load, which fixed byte permutations spread to the codes: no block straddles vector
// loads (with interleaved 26-byte blocks q6 matvec ran at ~60% of q4's bytes/s on Zen 5).
template <SplitBlock Block>
struct BlockGroup {
  static constexpr int64_t kBlocks = 4;
  static constexpr int64_t kLow = SplitFields<Block>::kLow, kHigh = SplitFields<Block>::kHigh;
  static constexpr int64_t kBytes = kBlocks * static_cast<int64_t>(sizeof(Block));
  static_assert(sizeof(Block) == 2 + kLow + kHigh);
  int64_t k;     // blocks in this group
  int64_t base;  // byte offset of the group in its row
  BlockGroup(int64_t nb, int64_t b) : k(nb - b / kBlocks * kBlocks), base(b / kBlocks * kBytes) {
    if (k > kBlocks) k = kBlocks;
  }
  int64_t d(int64_t i) const { return base + 2 * i; }
  int64_t low(int64_t i) const { return base + 2 * k + kLow * i; }
  int64_t high(int64_t i) const { return base + (2 + kLow) * k + kHigh * i; }
};

// Block b of a row of nb split-field blocks, read in place.
template <SplitBlock Block>
struct SplitBlockRef {
  uint16_t d;
  const uint8_t* low;   // BlockQ6/BlockQ5::qs, BlockQ3::ql
  const uint8_t* high;  // qh
};
template <SplitBlock Block>
SplitBlockRef<Block> split_row_block(const uint8_t* row, int64_t nb, int64_t b) {
  const BlockGroup<Block> g(nb, b);
  const int64_t i = b % BlockGroup<Block>::kBlocks;
  uint16_t d;
  __builtin_memcpy(&d, row + g.d(i), 2);
  return {d, row + g.low(i), row + g.high(i)};
}
// The block's fields as BlockGroup stores them, read from one block (its struct order
// is scale, low, high).
template <SplitBlock Block>
void store_split_row_block(uint8_t* row, int64_t nb, int64_t b, const Block& blk) {
  const BlockGroup<Block> g(nb, b);
  const int64_t i = b % BlockGroup<Block>::kBlocks;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&blk);
  __builtin_memcpy(row + g.d(i), bytes, 2);
  __builtin_memcpy(row + g.low(i), bytes + 2, BlockGroup<Block>::kLow);
  __builtin_memcpy(row + g.high(i), bytes + 2 + BlockGroup<Block>::kLow, BlockGroup<Block>::kHigh);
}

// Block b of a row of nb blocks as the kernels read it: a reference into the row, or
// for split-field types a SplitBlockRef.
template <class Block>
decltype(auto) row_block(const uint8_t* row, int64_t nb, int64_t b) {
  if constexpr (SplitBlock<Block>)
    return split_row_block<Block>(row, nb, b);
  else
    return (reinterpret_cast<const Block*>(row)[b]);
}

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
static_assert(sizeof(BlockMx4) == dtype_block_bytes(DType::Mx4));
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
inline int block_code(const BlockMx4& b, int j) { return nibble_field(b.qs, j); }
inline int block_code(const SplitBlockRef<BlockQ6>& b, int j) { return nibble_field(b.low, j) | pair_field(b.high, j) << 4; }
inline int block_code(const SplitBlockRef<BlockQ5>& b, int j) { return nibble_field(b.low, j) | bit_field(b.high, j) << 4; }
inline int block_code(const SplitBlockRef<BlockQ3>& b, int j) { return pair_field(b.low, j) | bit_field(b.high, j) << 2; }
// The int8 value a code stands for (times d): code - offset, or the code book's level.
inline int block_value(const BlockQ4& b, int j) { return block_code(b, j) - 8; }
inline int block_value(const BlockQ4N& b, int j) { return kQ4NLevels[block_code(b, j)]; }
inline int block_value(const BlockMx4& b, int j) { return kMx4Levels[block_code(b, j)]; }
inline int block_value(const SplitBlockRef<BlockQ6>& b, int j) { return block_code(b, j) - 32; }
inline int block_value(const SplitBlockRef<BlockQ5>& b, int j) { return block_code(b, j) - 16; }
inline int block_value(const SplitBlockRef<BlockQ3>& b, int j) { return block_code(b, j) - 4; }
inline int block_value(const BlockQ8& b, int j) { return b.qs[j]; }

// Element e (0..255) of a Q2K super-block: its code, and its sub-block's scale and minimum.
inline int q2k_code(const BlockQ2K& b, int e) { return (b.qs[e / 128 * 32 + e % 32] >> (2 * (e % 128 / 32))) & 3; }
inline int q2k_scale(const BlockQ2K& b, int e) { return b.scales[e / 16] & 15; }
inline int q2k_min(const BlockQ2K& b, int e) { return b.scales[e / 16] >> 4; }

}  // namespace qrun
