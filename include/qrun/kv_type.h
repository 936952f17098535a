// How the KV cache stores one position's keys (or values): f16, or llama.cpp's q8_0,
// q4_0 or iq4_nl (blocks with one f16 scale each: 34 or 18 bytes per 32 values, 47% or
// 72% less memory and fewer bytes for attention to read at long contexts; iq4_nl is
// q4_0's layout with non-uniform levels, less error for the same bytes).
#pragma once

#include <cstdint>
#include <numeric>
#include <string>

namespace qrun {

enum class KvType : uint8_t { F16, Q8_0, Q4_0, IQ4_NL };

// "f16", "q8_0", "q4_0", "iq4_nl": llama.cpp's names for --cache-type-k / --cache-type-v.
const char* kv_type_name(KvType t);
// "f16", or "keys q8_0, values f16" where the two differ.
std::string describe_kv_types(KvType keys, KvType values);
// The type of that name; throws qrun::Error naming the accepted ones.
KvType parse_kv_type(const std::string& name);

// Values per scale of a block type: blocks never straddle two heads, so a head of any size
// is whole blocks (32 for head_dim 64/128/256, 16 for 80, 8 for stories260K's 8).
inline int kv_group(int head_dim) { return std::gcd(head_dim, 32); }

inline bool kv_type_is_4bit(KvType t) { return t == KvType::Q4_0 || t == KvType::IQ4_NL; }

// Bytes of one block of g values: the f16 scale, then g int8 (q8_0) or g / 2 bytes of
// 4-bit codes (q4_0, iq4_nl: byte i holds value i in its low half and value i + g / 2 in
// its high).
inline int64_t kv_block_bytes(KvType t, int g) { return kv_type_is_4bit(t) ? 2 + g / 2 : 2 + g; }

// Where head element `col` (a multiple of the group) starts in a row, in bytes.
inline int64_t kv_col_offset(KvType t, int col, int head_dim) {
  if (t == KvType::F16) return int64_t{col} * 2;
  const int g = kv_group(head_dim);
  return int64_t{col} / g * kv_block_bytes(t, g);
}

// Bytes of one position's keys or values over all kv heads.
inline int64_t kv_row_bytes(KvType t, int kv_dim, int head_dim) { return kv_col_offset(t, kv_dim, head_dim); }

}  // namespace qrun
