// GGUF import: a llama.cpp model file (llama or qwen2 architecture) -> one qrun model
// file. Q8_0 and Q4_0 blocks are qrun's Q8/Q4 blocks byte for byte (same f16 scale,
// same code order; Q4 codes unsigned with offset 8), so they are carried over without
// re-quantizing when the target type matches; F32/F16/BF16 convert like safetensors;
// other types (K-quants, Q5_0...) are dequantized and re-quantized, with a warning
// naming the tensors. llama.cpp's converter permutes the Q/K rows of llama-arch files
// for its adjacent-pair RoPE; they are permuted back to the rotate-half order qrun uses.
#pragma once

#include <functional>
#include <string>

#include "convert/converter.h"
#include "convert/gguf_reader.h"
#include "qrun/format.h"

namespace qrun {

// The hyper-parameters a GGUF file's metadata and tensor shapes describe. Throws
// qrun::Error naming the file, offset and key when one is missing or inconsistent, and
// for architectures other than llama, qwen2, qwen3 and gemma2 (naming the architecture).
format::HParams gguf_hparams(const GgufFile& gguf);

// qrun tensor name -> GGUF tensor name ("layers.3.wq" -> "blk.3.attn_q.weight").
std::string gguf_tensor_name(const std::string& qrun_name, uint32_t arch = 1);  // from src/arch_table

struct GgufImportOptions {
  // Keep every tensor's GGUF type where qrun has it (F32, F16, BF16, Q8_0 -> q8,
  // Q4_0 -> q4); other types become q8 (5 bits/weight or more) or q4, norms F32.
  // When false, ConvertOptions::weight_type decides as for safetensors (docs/format.md).
  bool keep_types = false;
  std::function<void(const std::string&)> warn;   // warnings; empty: printed to stderr
};

WriteSummary convert_gguf(const std::string& gguf_path, const std::string& out_path, const ConvertOptions& options,
                          const GgufImportOptions& gguf_options = {});

// True when path names a GGUF file (a regular file starting with "GGUF").
bool is_gguf_file(const std::string& path);

}  // namespace qrun
