#include "qrun/model_layout.h"

#include <cmath>

#include "qrun/error.h"
#include "src/format/arch_table.h"

namespace qrun {

std::string layer_tensor_name(int layer, const char* what) {
  return "layers." + std::to_string(layer) + "." + what;
}

const char* arch_name(uint32_t arch) {
  for (const ArchInfo& a : all_archs())
    if (static_cast<uint32_t>(a.arch) == arch) return a.name;
  return "unknown";
}

std::vector<TensorSpec> expected_tensors(const format::HParams& hp) {
  const ArchInfo& arch = arch_info(hp.arch);
  std::vector<TensorSpec> specs;
  auto add = [&](const TensorRecipe& r, int layer) {
    if (!recipe_present(r, hp)) return;
    const int64_t rows = extent(r.rows, hp);
    specs.push_back({layer < 0 ? r.name : layer_tensor_name(layer, r.name), extent(r.cols, hp), rows,
                     rows == 1 ? 1 : 2, layer, r.role});
  };
  for (const TensorRecipe& r : arch.tensors)
    if (r.place == Place::BeforeLayers) add(r, -1);
  for (int l = 0; l < static_cast<int>(hp.n_layers); ++l)
    for (const TensorRecipe& r : arch.tensors)
      if (r.place == Place::Layer) add(r, l);
  for (const TensorRecipe& r : arch.tensors)
    if (r.place == Place::AfterLayers) add(r, -1);
  return specs;
}

void validate_hparams(const format::HParams& hp, const std::string& file, int64_t offset) {
  auto bad = [&](const std::string& why) { throw Error(file, offset, "invalid hyper-parameters: " + why); };
  if (hp.arch < 1 || hp.arch > format::kMaxArch) bad("unknown architecture id " + std::to_string(hp.arch));
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
  if (hp.rope_scaling > format::kMaxRopeScaling) bad("unknown rope scaling " + std::to_string(hp.rope_scaling));
  if ((hp.flags & ~format::kKnownFlags) != 0) bad("unknown flags " + std::to_string(hp.flags));
  if (hp.rotary_dim % 2 != 0 || hp.rotary_dim > hp.head_dim) bad("rotary_dim " + std::to_string(hp.rotary_dim));
  for (const float v : {hp.rope_attn_factor, hp.attn_softcap, hp.final_softcap, hp.query_scale, hp.rope_beta_fast,
                        hp.rope_beta_slow, hp.embedding_scale, hp.residual_scale, hp.logit_scale, hp.swiglu_limit})
    if (!(v >= 0.0f && v < 1e6f))
      bad("a rope, soft-capping, query, Granite scale or SwiGLU limit field is negative or not finite");
  if ((hp.rope_scaling == 3 || hp.rope_scaling == 4) && hp.rope_original_max_pos == 0)
    bad("yarn and longrope scaling need original_max_position_embeddings");
  if (hp.rope_scaling != 0 && !(hp.rope_factor >= 1.0f)) bad("rope factor must be >= 1");
  if (hp.rope_scaling == 2 && (hp.rope_original_max_pos == 0 || !(hp.rope_high_freq_factor > hp.rope_low_freq_factor)))
    bad("llama3 rope scaling needs original_max_position_embeddings and high_freq_factor > low_freq_factor");
  if (hp.sliding_period > format::kMaxLayers) bad("sliding_period " + std::to_string(hp.sliding_period));
  if ((hp.flags & format::kSlidingEvenLayers) && hp.sliding_period != 0)
    bad("sliding_period and sliding-on-even-layers both set");
  if (!(hp.rope_local_theta >= 0.0f && hp.rope_local_theta < 1e12f)) bad("rope_local_theta is negative or not finite");
  if (hp.nope_period > format::kMaxLayers) bad("nope_period " + std::to_string(hp.nope_period));
  if (hp.pooling > format::kMaxPooling) bad("unknown pooling " + std::to_string(hp.pooling));
  const bool moe_arch = arch_has_experts(hp.arch);
  if (moe_arch != (hp.n_experts != 0))
    bad(std::string(arch_name(hp.arch)) + (moe_arch ? " needs" : " has no") + " experts, n_experts is " +
        std::to_string(hp.n_experts));
  if (hp.n_experts > format::kMaxExperts) bad("n_experts " + std::to_string(hp.n_experts));
  if (hp.n_experts_used > hp.n_experts || (hp.n_experts != 0 && hp.n_experts_used == 0))
    bad("n_experts_used " + std::to_string(hp.n_experts_used) + " of " + std::to_string(hp.n_experts) + " experts");
  if ((hp.flags & (format::kNormTopK | format::kExpertBias)) && hp.n_experts == 0)
    bad("router renormalization or expert biases without experts");
  if ((hp.shared_hidden_dim != 0) != (hp.arch == static_cast<uint32_t>(format::Arch::Qwen2Moe)) ||
      hp.shared_hidden_dim > (1u << 18))
    bad("shared expert width " + std::to_string(hp.shared_hidden_dim) + " (" + arch_name(hp.arch) +
        (hp.arch == static_cast<uint32_t>(format::Arch::Qwen2Moe) ? " needs one, at most 262144)" : " has none)"));
  for (const uint8_t b : hp.reserved)
    if (b != 0) bad("reserved bytes are not zero (a newer qrun's file?)");
}

bool layer_uses_rope(const format::HParams& hp, int layer) {
  return hp.nope_period == 0 || (layer + 1) % static_cast<int>(hp.nope_period) != 0;
}

float embedding_scale(const format::HParams& hp) {
  if (hp.flags & format::kEmbedScale) return std::sqrt(static_cast<float>(hp.dim));
  return hp.embedding_scale != 0.0f ? hp.embedding_scale : 1.0f;
}

float residual_scale(const format::HParams& hp) { return hp.residual_scale != 0.0f ? hp.residual_scale : 1.0f; }

float logit_scale(const format::HParams& hp) { return hp.logit_scale != 0.0f ? hp.logit_scale : 1.0f; }

bool layer_is_sliding(const format::HParams& hp, int layer) {
  if (hp.sliding_window == 0) return false;
  if (hp.flags & format::kSlidingEvenLayers) return layer % 2 == 0;
  if (hp.sliding_period != 0) return (layer + 1) % static_cast<int>(hp.sliding_period) != 0;
  return true;
}

}  // namespace qrun
