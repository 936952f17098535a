// stories260K as a llama-arch GGUF, written the way llama.cpp's convert_hf_to_gguf.py
// writes it: llama.* hyper-parameters, tokenizer.ggml.* from tokenizer.model, tensors
// under GGUF names with the Q/K rows permuted for ggml's adjacent-pair RoPE, tied
// embeddings (no output.weight). `type_for` picks each 2-D tensor's type (F32, F16,
// Q8_0 or Q4_0; quantized ones with llama.cpp's reference quantizers); rows that are
// not a whole number of 32-blocks stay F32, as llama-quantize falls back.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/gguf_writer.h"
#include "common/test_paths.h"
#include "convert/hf_config.h"
#include "convert/safetensors.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun::test {

// llama.cpp's permute(): HF row h*hd + s*hd/2 + i goes to GGUF row h*hd + 2*i + s.
inline std::vector<float> ggml_permute_rows(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t head_dim) {
  std::vector<float> out(w.size());
  const int64_t half = head_dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t h = r / head_dim, s = (r % head_dim) / half, i = (r % head_dim) % half;
    const int64_t dst = h * head_dim + 2 * i + s;
    std::copy(w.begin() + r * cols, w.begin() + (r + 1) * cols, out.begin() + dst * cols);
  }
  return out;
}

inline std::vector<uint8_t> encode_rows(const std::vector<float>& w, int64_t cols, uint32_t type) {
  const int64_t rows = static_cast<int64_t>(w.size()) / cols;
  std::vector<uint8_t> b;
  if (type == kGgmlF32) {
    b.resize(w.size() * 4);
    if (!b.empty()) std::memcpy(b.data(), w.data(), b.size());
  } else if (type == kGgmlF16) {
    for (float f : w) GgufWriter::put<uint16_t>(b, f32_to_f16(f));
  } else if (type == kGgmlQ8_0) {
    b.resize(static_cast<size_t>(rows * cols / 32 * 34));
    for (int64_t r = 0; r < rows; ++r) ggml_quantize_q8_0(&w[r * cols], cols, &b[r * cols / 32 * 34]);
  } else if (type == kGgmlQ4_0) {
    b.resize(static_cast<size_t>(rows * cols / 32 * 18));
    for (int64_t r = 0; r < rows; ++r) ggml_quantize_q4_0(&w[r * cols], cols, &b[r * cols / 32 * 18]);
  } else if (type == kGgmlQ5_0) {
    b.resize(static_cast<size_t>(rows * cols / 32 * 22));
    for (int64_t r = 0; r < rows; ++r) ggml_quantize_q5_0(&w[r * cols], cols, &b[r * cols / 32 * 22]);
  } else if (type == kGgmlMxfp4) {
    // llama.cpp's reference MXFP4 quantizer: an exponent byte e for the block's largest
    // |x| (x = level * 2^(e - 128), levels doubled), then the nearest level of each value
    // (values that came from MXFP4 come back exactly).
    for (size_t at = 0; at < w.size(); at += 32) {
      float amax = 0.0f;
      for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(w[at + j]));
      const int e = amax > 0.0f ? std::clamp(static_cast<int>(std::floor(std::log2(amax))) - 2 + 127, 1, 254) : 0;
      const float d = std::ldexp(1.0f, e - 128);
      uint8_t codes[32];
      for (size_t j = 0; j < 32; ++j) {
        int best = 0;
        for (int c = 1; c < 16; ++c)
          if (std::fabs(w[at + j] - d * kMx4Levels[c]) < std::fabs(w[at + j] - d * kMx4Levels[best])) best = c;
        codes[j] = static_cast<uint8_t>(best);
      }
      b.push_back(static_cast<uint8_t>(e));
      for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(codes[j] | (codes[j + 16] << 4)));
    }
  }
  return b;
}

// Adds stories260K's tokenizer (from tokenizer.model) as tokenizer.ggml.* keys.
inline void add_stories_tokenizer(GgufWriter& g) {
  const auto tok = load_hf_tokenizer(stories_dir());
  g.str("tokenizer.ggml.model", "llama");
  g.strings("tokenizer.ggml.tokens", tok->pieces);
  g.f32s("tokenizer.ggml.scores", tok->scores);
  std::vector<int32_t> types;
  for (PieceType t : tok->types) types.push_back(static_cast<int32_t>(t));
  g.i32s("tokenizer.ggml.token_type", types);
  g.u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(tok->bos));
  g.u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tok->eos));
  g.u32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(tok->unk));
  g.boolean("tokenizer.ggml.add_bos_token", tok->add_bos);
  g.boolean("tokenizer.ggml.add_eos_token", false);
}

inline void add_stories_hparams(GgufWriter& g, const format::HParams& hp) {
  g.str("general.architecture", "llama");
  g.str("general.name", "stories260K");
  g.u32("general.alignment", 32);
  g.u32("llama.context_length", hp.max_seq_len);
  g.u32("llama.embedding_length", hp.dim);
  g.u32("llama.feed_forward_length", hp.hidden_dim);
  g.u32("llama.block_count", hp.n_layers);
  g.u32("llama.attention.head_count", hp.n_heads);
  g.u32("llama.attention.head_count_kv", hp.n_kv_heads);
  g.u32("llama.rope.dimension_count", hp.head_dim);
  g.f32("llama.rope.freq_base", hp.rope_theta);
  g.f32("llama.attention.layer_norm_rms_epsilon", hp.norm_eps);
}

inline std::vector<uint8_t> stories_gguf(const std::function<uint32_t(const std::string& gguf_name)>& type_for) {
  const format::HParams hp = read_hf_config(stories_dir());
  const SafetensorsCheckpoint ckpt(stories_dir());
  GgufWriter g;
  add_stories_hparams(g, hp);
  add_stories_tokenizer(g);
  auto read = [&](const std::string& hf) {
    const SafeTensor* t = ckpt.find(hf);
    std::vector<float> v(static_cast<size_t>(t->numel()));
    t->read_f32(0, t->numel(), v.data());
    return v;
  };
  auto matrix = [&](const std::string& gguf, const std::string& hf, bool permute) {
    const SafeTensor* t = ckpt.find(hf);
    const int64_t rows = t->shape[0], cols = t->shape[1];
    std::vector<float> w = read(hf);
    if (permute) w = ggml_permute_rows(w, rows, cols, hp.head_dim);
    uint32_t type = type_for(gguf);
    if (type != kGgmlF32 && type != kGgmlF16 && cols % 32 != 0) type = kGgmlF32;
    g.tensor(gguf, {cols, rows}, type, encode_rows(w, cols, type));
  };
  auto vec = [&](const std::string& gguf, const std::string& hf) {
    const std::vector<float> w = read(hf);
    g.tensor(gguf, {static_cast<int64_t>(w.size())}, kGgmlF32, encode_rows(w, static_cast<int64_t>(w.size()), kGgmlF32));
  };
  matrix("token_embd.weight", "model.embed_tokens.weight", false);
  for (uint32_t l = 0; l < hp.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", h + "input_layernorm.weight");
    matrix(b + "attn_q.weight", h + "self_attn.q_proj.weight", true);
    matrix(b + "attn_k.weight", h + "self_attn.k_proj.weight", true);
    matrix(b + "attn_v.weight", h + "self_attn.v_proj.weight", false);
    matrix(b + "attn_output.weight", h + "self_attn.o_proj.weight", false);
    vec(b + "ffn_norm.weight", h + "post_attention_layernorm.weight");
    matrix(b + "ffn_gate.weight", h + "mlp.gate_proj.weight", false);
    matrix(b + "ffn_down.weight", h + "mlp.down_proj.weight", false);
    matrix(b + "ffn_up.weight", h + "mlp.up_proj.weight", false);
  }
  vec("output_norm.weight", "model.norm.weight");
  return g.bytes();
}

}  // namespace qrun::test
