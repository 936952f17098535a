// One table per architecture: every tensor qrun stores for it, its shape, when it is
// present, and where it comes from in a Hugging Face checkpoint and in a GGUF file. The
// converter, the file validator (expected_tensors) and the model loader all read it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qrun/format.h"
#include "qrun/model_layout.h"

namespace qrun {

enum class Extent {
  One, Dim, Hidden, QDim, KvDim, HeadDim, Vocab, RopeHalf,
  Experts,           // n_experts: the router's rows
  ExpertsHidden,     // n_experts * hidden_dim: every expert's gate (or up) rows, stacked
  ExpertsDim,        // n_experts * dim: every expert's down-projection rows, stacked
  SharedHidden,      // shared_hidden_dim: the shared expert's gate (or up) rows
  TwoHidden,         // 2 * hidden_dim: an expert's gate and up biases, interleaved (gpt-oss)
  Heads,             // n_heads: one value per query head (gpt-oss's attention sinks)
};

enum class Need {
  Always,
  Bias,      // hp.attn_bias
  QkNorm,    // kQkNorm
  Sandwich,  // kSandwichNorms
  Untied,    // !hp.tied_embeddings
  LongRope,  // LongRoPE's per-frequency factors
  Dense,     // one FFN per layer (hp.n_experts == 0)
  Experts,   // a router and n_experts FFNs per layer
  Shared,    // a shared expert beside them (hp.shared_hidden_dim)
  OutBias,   // kOutputBias
  Sinks,     // kAttnSinks
  ExpertBias,  // kExpertBias
};

// A slice of a fused source tensor (Phi-3's qkv_proj and gate_up_proj): its rows.
// Experts: the rows of n_experts source tensors stacked in expert order; the source
// name has '*' where the expert's number goes ("mlp.experts.*.gate_proj.weight"), or
// has none when the checkpoint stacks them in one 3-D tensor [experts, rows, cols].
// ExpertsGate/ExpertsUp: a 3-D tensor of each expert's gate rows, then its up rows
// (GraniteMoe's input_linear). A GGUF file holds every role stacked on its own (3-D
// "ffn_gate_exps.weight"). ExpertsGateEven/ExpertsUpOdd: the same 3-D tensor with each
// expert's gate and up rows interleaved, gate first (gpt-oss's gate_up_proj).
enum class Part { Whole, Q, K, V, Gate, Up, Experts, ExpertsGate, ExpertsUp, ExpertsGateEven, ExpertsUpOdd };

enum class Place { BeforeLayers, Layer, AfterLayers };

struct TensorRecipe {
  const char* name;  // qrun's: per layer "wq" (stored as "layers.N.wq"), global "norm"
  Place place;
  Extent cols, rows;
  TensorRole role;
  Need need;
  const char* hf;    // per layer: the name after "model.layers.N."
  Part part;
  const char* gguf;  // per layer: the name after "blk.N."
  bool plus_one;     // the checkpoint stores w for a norm that multiplies by 1 + w (Gemma)
  // An unquantized checkpoint stores the (stacked) matrix as [in, out], for x @ W
  // (transformers' GptOssExperts); its MXFP4 pairs are [out, in] as everywhere else.
  bool in_by_out = false;
};

struct ArchInfo {
  format::Arch arch;
  const char* name;        // "llama"
  const char* hf_class;    // "LlamaForCausalLM"
  const char* model_type;  // config.json's model_type
  std::vector<TensorRecipe> tensors;
};

const std::vector<ArchInfo>& all_archs();
const ArchInfo& arch_info(uint32_t arch);                  // throws for an unknown id
const ArchInfo* find_arch(const std::string& hf_name);     // by class or model_type; null if none
std::string supported_archs();                             // "LlamaForCausalLM (llama), ..."

bool recipe_present(const TensorRecipe& r, const format::HParams& hp);
// Whether the architecture's FFN is a mixture of experts (its table has experts).
bool arch_has_experts(uint32_t arch);
// The recipe of a stored tensor ("layers.3.wq": wq's, layer 3; "norm": layer -1).
const TensorRecipe& find_recipe(const std::string& qrun_name, uint32_t arch, int* layer);
// Its name in a Hugging Face checkpoint ("model.layers.3.self_attn.q_proj.weight") or a
// GGUF file ("blk.3.attn_q.weight").
std::string source_tensor_name(const std::string& qrun_name, uint32_t arch, bool gguf);
int64_t extent(Extent e, const format::HParams& hp);
// Rows of the source tensor (the whole fused tensor for a part of one; one expert's,
// both its gate and up rows for ExpertsGate/ExpertsUp).
int64_t source_rows(const TensorRecipe& r, const format::HParams& hp);
bool is_experts(Part part);  // one of the Experts parts
// One expert's source tensor name: the '*' of an Experts recipe's name replaced.
std::string expert_source_name(const std::string& source_name, int expert);
// First row of `part` within its fused source tensor, and the step between its rows there.
int64_t part_row_offset(Part part, const format::HParams& hp);
int64_t part_row_step(Part part);

}  // namespace qrun
