#include "src/format/arch_table.h"

#include <algorithm>

#include "qrun/error.h"
#include "src/format/layer_tensor_name.h"

namespace qrun {

namespace {

using E = Extent;
using N = Need;
using P = Place;
using R = TensorRole;

// Llama's tensors; the other architectures are this list with changes.
std::vector<TensorRecipe> llama_tensors() {
  return {
      {"tok_embeddings", P::BeforeLayers, E::Dim, E::Vocab, R::Embedding, N::Always, "model.embed_tokens.weight", Part::Whole, "token_embd.weight", false},
      {"attention_norm", P::Layer, E::Dim, E::One, R::Norm, N::Always, "input_layernorm.weight", Part::Whole, "attn_norm.weight", false},
      {"wq", P::Layer, E::Dim, E::QDim, R::Projection, N::Always, "self_attn.q_proj.weight", Part::Whole, "attn_q.weight", false},
      {"wk", P::Layer, E::Dim, E::KvDim, R::Projection, N::Always, "self_attn.k_proj.weight", Part::Whole, "attn_k.weight", false},
      {"wv", P::Layer, E::Dim, E::KvDim, R::Projection, N::Always, "self_attn.v_proj.weight", Part::Whole, "attn_v.weight", false},
      {"bq", P::Layer, E::QDim, E::One, R::Bias, N::Bias, "self_attn.q_proj.bias", Part::Whole, "attn_q.bias", false},
      {"bk", P::Layer, E::KvDim, E::One, R::Bias, N::Bias, "self_attn.k_proj.bias", Part::Whole, "attn_k.bias", false},
      {"bv", P::Layer, E::KvDim, E::One, R::Bias, N::Bias, "self_attn.v_proj.bias", Part::Whole, "attn_v.bias", false},
      {"q_norm", P::Layer, E::HeadDim, E::One, R::Norm, N::QkNorm, "self_attn.q_norm.weight", Part::Whole, "attn_q_norm.weight", false},
      {"k_norm", P::Layer, E::HeadDim, E::One, R::Norm, N::QkNorm, "self_attn.k_norm.weight", Part::Whole, "attn_k_norm.weight", false},
      {"wo", P::Layer, E::QDim, E::Dim, R::Projection, N::Always, "self_attn.o_proj.weight", Part::Whole, "attn_output.weight", false},
      {"bo", P::Layer, E::Dim, E::One, R::Bias, N::OutBias, "self_attn.o_proj.bias", Part::Whole, "attn_output.bias", false},
      {"post_attention_norm", P::Layer, E::Dim, E::One, R::Norm, N::Sandwich, "post_attention_layernorm.weight", Part::Whole, "post_attention_norm.weight", false},
      {"ffn_norm", P::Layer, E::Dim, E::One, R::Norm, N::Always, "post_attention_layernorm.weight", Part::Whole, "ffn_norm.weight", false},
      {"w1", P::Layer, E::Dim, E::Hidden, R::Projection, N::Dense, "mlp.gate_proj.weight", Part::Whole, "ffn_gate.weight", false},
      {"w2", P::Layer, E::Hidden, E::Dim, R::Projection, N::Dense, "mlp.down_proj.weight", Part::Whole, "ffn_down.weight", false},
      {"w3", P::Layer, E::Dim, E::Hidden, R::Projection, N::Dense, "mlp.up_proj.weight", Part::Whole, "ffn_up.weight", false},
      {"post_ffn_norm", P::Layer, E::Dim, E::One, R::Norm, N::Sandwich, "post_feedforward_layernorm.weight", Part::Whole, "post_ffw_norm.weight", false},
      {"norm", P::AfterLayers, E::Dim, E::One, R::Norm, N::Always, "model.norm.weight", Part::Whole, "output_norm.weight", false},
      {"output", P::AfterLayers, E::Dim, E::Vocab, R::Output, N::Untied, "lm_head.weight", Part::Whole, "output.weight", false},
  };
}

TensorRecipe& recipe(std::vector<TensorRecipe>& list, const std::string& name) {
  for (TensorRecipe& r : list)
    if (name == r.name) return r;
  throw Error("arch table: no tensor " + name);
}

// Where the named recipe sits, to insert others before or after it.
std::vector<TensorRecipe>::iterator position(std::vector<TensorRecipe>& list, const std::string& name) {
  return list.begin() + (&recipe(list, name) - list.data());
}

std::vector<TensorRecipe> gemma2_tensors() {
  auto t = llama_tensors();
  recipe(t, "ffn_norm").hf = "pre_feedforward_layernorm.weight";
  for (const char* n : {"attention_norm", "post_attention_norm", "ffn_norm", "post_ffn_norm", "norm"})
    recipe(t, n).plus_one = true;
  return t;
}

// Gemma 3: Gemma 2's tensors plus q/k norms, which multiply by 1 + w too.
std::vector<TensorRecipe> gemma3_tensors() {
  auto t = gemma2_tensors();
  for (const char* n : {"q_norm", "k_norm"}) recipe(t, n).plus_one = true;
  return t;
}

// Mixture of experts: Llama's layer with the FFN replaced by a router and stacked
// experts (gate, down, up), named as Qwen3-MoE's checkpoints name them.
std::vector<TensorRecipe> qwen3moe_tensors() {
  auto t = llama_tensors();
  t.insert(position(t, "w3") + 1, {
      {"router", P::Layer, E::Dim, E::Experts, R::Projection, N::Experts, "mlp.gate.weight", Part::Whole, "ffn_gate_inp.weight", false},
      {"w1_experts", P::Layer, E::Dim, E::ExpertsHidden, R::Projection, N::Experts, "mlp.experts.*.gate_proj.weight", Part::Experts, "ffn_gate_exps.weight", false},
      {"w2_experts", P::Layer, E::Hidden, E::ExpertsDim, R::Projection, N::Experts, "mlp.experts.*.down_proj.weight", Part::Experts, "ffn_down_exps.weight", false},
      {"w3_experts", P::Layer, E::Dim, E::ExpertsHidden, R::Projection, N::Experts, "mlp.experts.*.up_proj.weight", Part::Experts, "ffn_up_exps.weight", false},
  });
  return t;
}

// Qwen2-MoE: Qwen3-MoE's experts (and Qwen2's q/k/v biases) plus a shared expert, whose
// output a one-row gate weighs by sigmoid(gate . x).
std::vector<TensorRecipe> qwen2moe_tensors() {
  auto t = qwen3moe_tensors();
  // Before the experts: the layer streamer reads a layer's dense part ahead and needs the
  // experts last (layer_stream_ranges).
  t.insert(position(t, "w1_experts"), {
      {"shared_gate", P::Layer, E::Dim, E::One, R::Norm, N::Shared, "mlp.shared_expert_gate.weight", Part::Whole, "ffn_gate_inp_shexp.weight", false},
      {"w1_shared", P::Layer, E::Dim, E::SharedHidden, R::Projection, N::Shared, "mlp.shared_expert.gate_proj.weight", Part::Whole, "ffn_gate_shexp.weight", false},
      {"w2_shared", P::Layer, E::SharedHidden, E::Dim, R::Projection, N::Shared, "mlp.shared_expert.down_proj.weight", Part::Whole, "ffn_down_shexp.weight", false},
      {"w3_shared", P::Layer, E::Dim, E::SharedHidden, R::Projection, N::Shared, "mlp.shared_expert.up_proj.weight", Part::Whole, "ffn_up_shexp.weight", false},
  });
  return t;
}

// Mixtral's checkpoints call the MoE block block_sparse_moe and its experts' matrices w1, w2, w3.
std::vector<TensorRecipe> mixtral_tensors() {
  auto t = qwen3moe_tensors();
  recipe(t, "router").hf = "block_sparse_moe.gate.weight";
  recipe(t, "w1_experts").hf = "block_sparse_moe.experts.*.w1.weight";
  recipe(t, "w2_experts").hf = "block_sparse_moe.experts.*.w2.weight";
  recipe(t, "w3_experts").hf = "block_sparse_moe.experts.*.w3.weight";
  return t;
}

// Experts stacked in two 3-D tensors, [experts, rows, cols]: every expert's gate and up
// rows in one (split as `gate` and `up` say), its down rows in the other.
void fused_experts(std::vector<TensorRecipe>& t, const char* router, const char* gate_up, Part gate, Part up,
                   const char* down) {
  recipe(t, "router").hf = router;
  recipe(t, "w1_experts").hf = gate_up;
  recipe(t, "w1_experts").part = gate;
  recipe(t, "w3_experts").hf = gate_up;
  recipe(t, "w3_experts").part = up;
  recipe(t, "w2_experts").hf = down;
}

// GraniteMoe: the gate rows above the up rows in input_linear, the down rows in output_linear.
std::vector<TensorRecipe> granitemoe_tensors() {
  auto t = qwen3moe_tensors();
  fused_experts(t, "block_sparse_moe.router.layer.weight", "block_sparse_moe.input_linear.weight", Part::ExpertsGate,
                Part::ExpertsUp, "block_sparse_moe.output_linear.weight");
  return t;
}

// gpt-oss: biases on every attention projection (Llama's, with attention_bias), a learned softmax sink per head, and
// experts whose router and projections have biases. The experts come stacked in 3-D
// tensors, gate and up rows interleaved in one (MXFP4 blocks in OpenAI's checkpoints,
// read through the _blocks/_scales pair); the biases sit before the experts, as the
// layer streamer reads a layer's dense part ahead and only the chosen experts.
std::vector<TensorRecipe> gptoss_tensors() {
  auto t = qwen3moe_tensors();
  t.insert(position(t, "bo") + 1, {
      {"attn_sinks", P::Layer, E::Heads, E::One, R::Bias, N::Sinks, "self_attn.sinks", Part::Whole, "attn_sinks.weight", false},
  });
  t.insert(position(t, "router") + 1, {
      {"router_bias", P::Layer, E::Experts, E::One, R::Bias, N::ExpertBias, "mlp.router.bias", Part::Whole, "ffn_gate_inp.bias", false},
      {"experts_gate_up_bias", P::Layer, E::TwoHidden, E::Experts, R::Bias, N::ExpertBias, "mlp.experts.gate_up_proj_bias", Part::Whole, "", false},
      {"experts_down_bias", P::Layer, E::Dim, E::Experts, R::Bias, N::ExpertBias, "mlp.experts.down_proj_bias", Part::Whole, "ffn_down_exps.bias", false},
  });
  fused_experts(t, "mlp.router.weight", "mlp.experts.gate_up_proj", Part::ExpertsGateEven, Part::ExpertsUpOdd,
                "mlp.experts.down_proj");
  for (const char* n : {"w1_experts", "w2_experts", "w3_experts"}) recipe(t, n).in_by_out = true;
  // llama.cpp's names: the FFN's norm as post_attention_norm, the gate and up biases apart
  // (ffn_gate_exps.bias, ffn_up_exps.bias: the GGUF importer interleaves them).
  recipe(t, "ffn_norm").gguf = "post_attention_norm.weight";
  return t;
}

std::vector<TensorRecipe> phi3_tensors() {
  auto t = llama_tensors();
  const std::pair<const char*, Part> fused[] = {{"wq", Part::Q}, {"wk", Part::K}, {"wv", Part::V}};
  for (const auto& [name, part] : fused) {
    recipe(t, name).hf = "self_attn.qkv_proj.weight";
    recipe(t, name).gguf = "attn_qkv.weight";
    recipe(t, name).part = part;
  }
  // llama.cpp keeps gate_up_proj fused too, as ffn_up (gate rows first).
  for (const auto& [name, part] : {std::pair{"w1", Part::Gate}, std::pair{"w3", Part::Up}}) {
    recipe(t, name).hf = "mlp.gate_up_proj.weight";
    recipe(t, name).gguf = "ffn_up.weight";
    recipe(t, name).part = part;
  }
  // LongRoPE's factors come from config.json (the converter fills them in).
  t.insert(t.begin() + 1, {"rope_factors_short", P::BeforeLayers, E::RopeHalf, E::One, R::Norm, N::LongRope, "", Part::Whole, "rope_factors_short.weight", false});
  t.insert(t.begin() + 2, {"rope_factors_long", P::BeforeLayers, E::RopeHalf, E::One, R::Norm, N::LongRope, "", Part::Whole, "rope_factors_long.weight", false});
  return t;
}

}  // namespace

const std::vector<ArchInfo>& all_archs() {
  static const std::vector<ArchInfo> archs = {
      {format::Arch::Llama, "llama", "LlamaForCausalLM", "llama", llama_tensors()},
      {format::Arch::Mistral, "mistral", "MistralForCausalLM", "mistral", llama_tensors()},
      {format::Arch::Qwen2, "qwen2", "Qwen2ForCausalLM", "qwen2", llama_tensors()},
      {format::Arch::Qwen3, "qwen3", "Qwen3ForCausalLM", "qwen3", llama_tensors()},
      {format::Arch::Gemma2, "gemma2", "Gemma2ForCausalLM", "gemma2", gemma2_tensors()},
      {format::Arch::Phi3, "phi3", "Phi3ForCausalLM", "phi3", phi3_tensors()},
      {format::Arch::Gemma3, "gemma3", "Gemma3ForCausalLM", "gemma3_text", gemma3_tensors()},
      {format::Arch::SmolLM3, "smollm3", "SmolLM3ForCausalLM", "smollm3", llama_tensors()},
      {format::Arch::Qwen3Moe, "qwen3moe", "Qwen3MoeForCausalLM", "qwen3_moe", qwen3moe_tensors()},
      {format::Arch::Mixtral, "mixtral", "MixtralForCausalLM", "mixtral", mixtral_tensors()},
      {format::Arch::Granite, "granite", "GraniteForCausalLM", "granite", llama_tensors()},
      {format::Arch::GraniteMoe, "granitemoe", "GraniteMoeForCausalLM", "granitemoe", granitemoe_tensors()},
      {format::Arch::Qwen2Moe, "qwen2moe", "Qwen2MoeForCausalLM", "qwen2_moe", qwen2moe_tensors()},
      {format::Arch::GptOss, "gpt-oss", "GptOssForCausalLM", "gpt_oss", gptoss_tensors()},
  };
  return archs;
}

const ArchInfo& arch_info(uint32_t arch) {
  for (const ArchInfo& a : all_archs())
    if (static_cast<uint32_t>(a.arch) == arch) return a;
  throw Error("unknown architecture id " + std::to_string(arch));
}

const ArchInfo* find_arch(const std::string& hf_name) {
  for (const ArchInfo& a : all_archs())
    if (hf_name == a.hf_class || hf_name == a.model_type) return &a;
  return nullptr;
}

std::string supported_archs() {
  std::string s;
  for (const ArchInfo& a : all_archs()) s += std::string(s.empty() ? "" : ", ") + a.hf_class;
  return s;
}

const TensorRecipe& find_recipe(const std::string& name, uint32_t arch, int* layer) {
  std::string base = name;
  *layer = -1;
  if (name.starts_with("layers.") && !split_layer_name(name, "layers.", layer, &base))
    throw Error("malformed layer tensor name '" + name + "' (want layers.N.role)");
  for (const TensorRecipe& r : arch_info(arch).tensors)
    if (base == r.name) return r;
  throw Error("no tensor '" + name + "' in architecture " + arch_info(arch).name);
}

std::string source_tensor_name(const std::string& name, uint32_t arch, bool gguf) {
  int layer = -1;
  const TensorRecipe& r = find_recipe(name, arch, &layer);
  const char* n = gguf ? r.gguf : r.hf;
  if (layer < 0) return n;
  return (gguf ? "blk." : "model.layers.") + std::to_string(layer) + "." + n;
}

bool arch_has_experts(uint32_t arch) {
  const auto& t = arch_info(arch).tensors;
  return std::any_of(t.begin(), t.end(), [](const TensorRecipe& r) { return r.need == Need::Experts; });
}

bool recipe_present(const TensorRecipe& r, const format::HParams& hp) {
  switch (r.need) {
    case Need::Always: return true;
    case Need::Bias: return hp.attn_bias != 0;
    case Need::QkNorm: return (hp.flags & format::kQkNorm) != 0;
    case Need::Sandwich: return (hp.flags & format::kSandwichNorms) != 0;
    case Need::Untied: return hp.tied_embeddings == 0;
    case Need::LongRope: return hp.rope_scaling == static_cast<uint32_t>(format::RopeScaling::LongRope);
    case Need::Dense: return hp.n_experts == 0;
    case Need::Experts: return hp.n_experts != 0;
    case Need::Shared: return hp.shared_hidden_dim != 0;
    case Need::OutBias: return (hp.flags & format::kOutputBias) != 0;
    case Need::Sinks: return (hp.flags & format::kAttnSinks) != 0;
    case Need::ExpertBias: return (hp.flags & format::kExpertBias) != 0;
  }
  return false;
}

int64_t extent(Extent e, const format::HParams& hp) {
  switch (e) {
    case Extent::One: return 1;
    case Extent::Dim: return hp.dim;
    case Extent::Hidden: return hp.hidden_dim;
    case Extent::QDim: return int64_t{hp.n_heads} * hp.head_dim;
    case Extent::KvDim: return int64_t{hp.n_kv_heads} * hp.head_dim;
    case Extent::HeadDim: return hp.head_dim;
    case Extent::Vocab: return hp.vocab_size;
    case Extent::RopeHalf: return (hp.rotary_dim ? hp.rotary_dim : hp.head_dim) / 2;
    case Extent::Experts: return hp.n_experts;
    case Extent::ExpertsHidden: return int64_t{hp.n_experts} * hp.hidden_dim;
    case Extent::ExpertsDim: return int64_t{hp.n_experts} * hp.dim;
    case Extent::SharedHidden: return hp.shared_hidden_dim;
    case Extent::TwoHidden: return 2 * int64_t{hp.hidden_dim};
    case Extent::Heads: return hp.n_heads;
  }
  return 0;
}

int64_t source_rows(const TensorRecipe& r, const format::HParams& hp) {
  switch (r.part) {
    case Part::Q: case Part::K: case Part::V: return extent(Extent::QDim, hp) + 2 * extent(Extent::KvDim, hp);
    case Part::Gate: case Part::Up: return 2 * int64_t{hp.hidden_dim};
    case Part::Experts: return extent(r.rows, hp) / std::max<int64_t>(1, hp.n_experts);
    case Part::ExpertsGate: case Part::ExpertsUp: case Part::ExpertsGateEven: case Part::ExpertsUpOdd:
      return 2 * int64_t{hp.hidden_dim};
    case Part::Whole: break;
  }
  return extent(r.rows, hp);
}

bool is_experts(Part part) {
  return part == Part::Experts || part == Part::ExpertsGate || part == Part::ExpertsUp ||
         part == Part::ExpertsGateEven || part == Part::ExpertsUpOdd;
}

std::string expert_source_name(const std::string& source_name, int expert) {
  const size_t star = source_name.find('*');
  if (star == std::string::npos) return source_name;
  return source_name.substr(0, star) + std::to_string(expert) + source_name.substr(star + 1);
}

int64_t part_row_offset(Part part, const format::HParams& hp) {
  const int64_t q = extent(Extent::QDim, hp), kv = extent(Extent::KvDim, hp);
  switch (part) {
    case Part::Whole: case Part::Q: case Part::Gate: case Part::Experts: case Part::ExpertsGate:
    case Part::ExpertsGateEven: return 0;
    case Part::K: return q;
    case Part::V: return q + kv;
    case Part::Up: case Part::ExpertsUp: return hp.hidden_dim;
    case Part::ExpertsUpOdd: return 1;
  }
  return 0;
}

int64_t part_row_step(Part part) { return part == Part::ExpertsGateEven || part == Part::ExpertsUpOdd ? 2 : 1; }

}  // namespace qrun
