#include "qrun/model_layout.h"

#include "qrun/error.h"

namespace qrun {

std::string layer_tensor_name(int layer, const char* what) {
  return "layers." + std::to_string(layer) + "." + what;
}

const char* arch_name(uint32_t arch) {
  switch (static_cast<format::Arch>(arch)) {
    case format::Arch::Llama: return "llama";
    case format::Arch::Mistral: return "mistral";
    case format::Arch::Qwen2: return "qwen2";
  }
  return "unknown";
}

std::vector<TensorSpec> expected_tensors(const format::HParams& hp) {
  const int64_t dim = hp.dim, hidden = hp.hidden_dim;
  const int64_t q_dim = int64_t{hp.n_heads} * hp.head_dim;
  const int64_t kv_dim = int64_t{hp.n_kv_heads} * hp.head_dim;
  std::vector<TensorSpec> specs;
  specs.push_back({"tok_embeddings", dim, hp.vocab_size, 2, -1, TensorRole::Embedding});
  for (int l = 0; l < static_cast<int>(hp.n_layers); ++l) {
    auto add = [&](const char* what, int64_t cols, int64_t rows, TensorRole role) {
      specs.push_back({layer_tensor_name(l, what), cols, rows, rows == 1 ? 1 : 2, l, role});
    };
    add("attention_norm", dim, 1, TensorRole::Norm);
    add("wq", dim, q_dim, TensorRole::Projection);
    add("wk", dim, kv_dim, TensorRole::Projection);
    add("wv", dim, kv_dim, TensorRole::Projection);
    if (hp.attn_bias) {
      add("bq", q_dim, 1, TensorRole::Bias);
      add("bk", kv_dim, 1, TensorRole::Bias);
      add("bv", kv_dim, 1, TensorRole::Bias);
    }
    add("wo", q_dim, dim, TensorRole::Projection);
    add("ffn_norm", dim, 1, TensorRole::Norm);
    add("w1", dim, hidden, TensorRole::Projection);
    add("w2", hidden, dim, TensorRole::Projection);
    add("w3", dim, hidden, TensorRole::Projection);
  }
  specs.push_back({"norm", dim, 1, 1, -1, TensorRole::Norm});
  if (!hp.tied_embeddings) specs.push_back({"output", dim, hp.vocab_size, 2, -1, TensorRole::Output});
  return specs;
}

void validate_hparams(const format::HParams& hp, const std::string& file, int64_t offset) {
  auto bad = [&](const std::string& why) { throw Error(file, offset, "invalid hyper-parameters: " + why); };
  if (hp.arch < 1 || hp.arch > 3) bad("unknown architecture id " + std::to_string(hp.arch));
  if (hp.n_layers == 0 || hp.n_layers > format::kMaxLayers) bad("n_layers " + std::to_string(hp.n_layers));
  if (hp.dim == 0 || hp.dim > (1u << 16)) bad("dim " + std::to_string(hp.dim));
  if (hp.hidden_dim == 0 || hp.hidden_dim > (1u << 18)) bad("hidden_dim " + std::to_string(hp.hidden_dim));
  if (hp.n_heads == 0 || hp.n_heads > 1024) bad("n_heads " + std::to_string(hp.n_heads));
  if (hp.n_kv_heads == 0 || hp.n_kv_heads > hp.n_heads || hp.n_heads % hp.n_kv_heads != 0)
    bad("n_kv_heads " + std::to_string(hp.n_kv_heads) + " does not divide n_heads " + std::to_string(hp.n_heads));
  if (hp.head_dim == 0 || hp.head_dim % 2 != 0 || hp.head_dim > 1024) bad("head_dim " + std::to_string(hp.head_dim));
  if (hp.vocab_size == 0 || hp.vocab_size > (1u << 22)) bad("vocab_size " + std::to_string(hp.vocab_size));
  if (hp.max_seq_len == 0 || hp.max_seq_len > (1u << 24)) bad("max_seq_len " + std::to_string(hp.max_seq_len));
  if (!(hp.rope_theta > 0.0f)) bad("rope_theta must be positive");
  if (!(hp.norm_eps > 0.0f && hp.norm_eps < 1.0f)) bad("norm_eps out of range");
  if (hp.rope_scaling > 2) bad("unknown rope scaling " + std::to_string(hp.rope_scaling));
  if (hp.rope_scaling != 0 && !(hp.rope_factor >= 1.0f)) bad("rope factor must be >= 1");
  if (hp.rope_scaling == 2 && (hp.rope_original_max_pos == 0 || !(hp.rope_high_freq_factor > hp.rope_low_freq_factor)))
    bad("llama3 rope scaling needs original_max_position_embeddings and high_freq_factor > low_freq_factor");
}

}  // namespace qrun
