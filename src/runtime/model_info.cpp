#include "qrun/model_info.h"

#include <cstdio>
#include <string>

#include "qrun/embedding.h"
#include "qrun/model_layout.h"
#include "qrun/tokenizer.h"

namespace qrun {

namespace {
std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}
}  // namespace

void print_model_info(const ModelFile& model, std::ostream& out, bool list_tensors) {
  const auto& hp = model.hparams();
  const auto& h = model.header();
  const char* scaling[] = {"none", "linear", "llama3", "yarn", "longrope"};
  out << "file:          " << model.path() << " (" << mib(h.file_size) << ", format v" << h.version << ", alignment "
      << h.alignment << ")\n"
      << "architecture:  " << arch_name(hp.arch) << "\n"
      << "layers:        " << hp.n_layers << "\n"
      << "dim:           " << hp.dim << " (ffn " << hp.hidden_dim << (hp.n_experts ? " per expert" : "") << ")\n";
  if (hp.n_experts) {
    out << "experts:       " << hp.n_experts << ", " << hp.n_experts_used << " used per token"
        << (hp.flags & format::kNormTopK ? " (their weights renormalized)" : "");
    if (hp.shared_hidden_dim) out << ", and a shared expert of " << hp.shared_hidden_dim;
    if (hp.flags & format::kExpertBias) out << "; router and experts with biases";
    if (hp.swiglu_limit > 0) out << "; SwiGLU clamped at " << hp.swiglu_limit;
    out << "\n";
  }
  out << "heads:         " << hp.n_heads << " (kv " << hp.n_kv_heads << ", head_dim " << hp.head_dim << ")\n"
      << "vocab:         " << hp.vocab_size << "\n"
      << "context:       " << hp.max_seq_len << "\n"
      << "rope:          theta " << hp.rope_theta << ", scaling " << scaling[hp.rope_scaling % 5];
  if (hp.rope_scaling) out << " x" << hp.rope_factor;
  if (hp.rope_local_theta > 0) out << "; sliding layers theta " << hp.rope_local_theta << ", unscaled";
  if (hp.nope_period) out << "; none on every " << hp.nope_period << "th layer (NoPE)";
  out << "\n";
  if (hp.sliding_window) {
    int sliding = 0;
    for (int l = 0; l < static_cast<int>(hp.n_layers); ++l) sliding += layer_is_sliding(hp, l);
    out << "window:        " << hp.sliding_window << " tokens, sliding on " << sliding << " of " << hp.n_layers << " layers\n";
  }
  out
      << "norm eps:      " << hp.norm_eps << "\n"
      << "tied output:   " << (hp.tied_embeddings ? "yes" : "no") << ", attention bias: "
      << (hp.attn_bias ? "q/k/v" : "no") << (hp.flags & format::kOutputBias ? ", output" : "")
      << (hp.flags & format::kAttnSinks ? "; attention sinks" : "") << "\n"
      << "weight type:   " << dtype_name(static_cast<DType>(hp.weight_type)) << "\n";
  if (hp.embedding_scale != 0 || hp.residual_scale != 0 || hp.logit_scale != 0) {
    out << "multipliers:   embedding " << embedding_scale(hp) << ", residual " << residual_scale(hp) << ", attention ";
    if (hp.query_scale != 0) out << hp.query_scale;
    else out << "1/sqrt(head_dim)";
    out << ", logits / " << logit_scale(hp) << "\n";
  }
  if (hp.pooling) out << "pooling:       " << pooling_name(static_cast<Pooling>(hp.pooling)) << " (embeddings)\n";

  const Tokenizer tok(deserialize_tokenizer(model));
  out << "tokenizer:     " << tok.kind_name() << ", " << tok.vocab_size() << " tokens, bos " << tok.bos_id()
      << ", chat template " << (tok.chat_template().empty() ? "no" : "yes") << " (" << model.tokenizer_blob().size()
      << " bytes)\n";

  uint64_t qw = 0, qb = 0;
  for (const auto& t : model.tensors()) {
    if (t.layer >= 0 && dtype_is_quantized(t.dtype)) {
      qw += static_cast<uint64_t>(t.rows * t.cols);
      qb += t.size;
    }
  }
  if (qw) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", 8.0 * static_cast<double>(qb) / static_cast<double>(qw));
    out << "bits/weight:   " << buf << " (quantized layer matrices)\n";
  }
  out << "layer ranges:\n";
  for (size_t l = 0; l < model.layers().size(); ++l) {
    const auto& r = model.layers()[l];
    out << "  layer " << l << ": [" << r.offset << ", " << r.offset + r.size << ") " << mib(r.size) << "\n";
  }
  if (!list_tensors) return;
  out << "tensors:\n";
  char line[256];
  for (const auto& t : model.tensors()) {
    std::snprintf(line, sizeof line, "  %-24s %-5s [%6lld, %6lld] offset %10llu  %12llu bytes\n", t.name.c_str(),
                  std::string(dtype_name(t.dtype)).c_str(), static_cast<long long>(t.cols),
                  static_cast<long long>(t.rows), static_cast<unsigned long long>(t.offset),
                  static_cast<unsigned long long>(t.size));
    out << line;
  }
}

}  // namespace qrun
