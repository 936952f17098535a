// llama.cpp's converter permutes the Q/K rows of llama-derived architectures (Llama,
// Mixtral, Granite, GraniteMoe) for its adjacent-pair RoPE: within each head, HF
// (rotate-half) row s*half + i is stored at row 2*i + s. The GGUF importer and the GGUF
// LoRA reader put them back.
#pragma once

#include <cstdint>

#include "qrun/format.h"

namespace qrun {

inline bool gguf_permutes_qk(uint32_t arch) {
  using format::Arch;
  return arch == static_cast<uint32_t>(Arch::Llama) || arch == static_cast<uint32_t>(Arch::Mixtral) ||
         arch == static_cast<uint32_t>(Arch::Granite) || arch == static_cast<uint32_t>(Arch::GraniteMoe);
}

// The GGUF row that holds qrun (Hugging Face) row r.
inline int64_t gguf_unpermuted_row(int64_t r, int64_t head_dim) {
  const int64_t half = head_dim / 2, h = r / head_dim, w = r % head_dim;
  return h * head_dim + 2 * (w % half) + w / half;
}

}  // namespace qrun
