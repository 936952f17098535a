// On-disk layout of a qrun model file (docs/format.md is the specification).
// All integers are little-endian; these structs are read by memcpy on little-endian
// hosts only (checked at compile time), and every field is validated before use.
#pragma once

#include <cstdint>
#include <type_traits>

namespace qrun::format {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "qrun model files are little-endian");

inline constexpr char kMagic[8] = {'Q', 'R', 'U', 'N', 'M', 'D', 'L', '\0'};
inline constexpr uint32_t kVersion = 1;
inline constexpr uint64_t kAlignment = 4096;  // tensor and layer alignment (docs/format.md)
// The writer places every tensor at the next multiple of the alignment; readers that
// predict a file's size (qrun --estimate) round the same way.
inline constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
inline constexpr uint32_t kMaxNameLen = 63;   // tensor names are NUL-padded to 64 bytes
inline constexpr uint32_t kMaxLayers = 1024;
inline constexpr uint32_t kMaxTensors = 1u << 16;
inline constexpr uint32_t kMaxExperts = 1024;

struct FileHeader {                 // at offset 0, 128 bytes
  char magic[8];
  uint32_t version;
  uint32_t header_size;             // sizeof(FileHeader)
  uint64_t file_size;               // the whole file, for truncation checks
  uint64_t alignment;               // power of two >= 4096
  uint64_t hparams_offset;          // HParams
  uint64_t hparams_size;
  uint64_t tokenizer_offset;        // opaque tokenizer blob (its own versioned encoding)
  uint64_t tokenizer_size;
  uint64_t tensors_offset;          // TensorEntry[n_tensors]
  uint64_t layers_offset;           // LayerRange[n_layers]
  uint32_t n_tensors;
  uint32_t n_layers;
  uint64_t data_offset;             // first tensor byte; aligned
  uint64_t meta_checksum;           // XXH3-64 of bytes [header_size, data_offset) : all metadata
  uint8_t reserved[24];
};
static_assert(sizeof(FileHeader) == 128);

enum class Arch : uint32_t { Llama = 1, Mistral = 2, Qwen2 = 3, Qwen3 = 4, Gemma2 = 5, Phi3 = 6, Gemma3 = 7, SmolLM3 = 8,
                         Qwen3Moe = 9, Mixtral = 10, Granite = 11, GraniteMoe = 12, Qwen2Moe = 13, GptOss = 14 };
inline constexpr uint32_t kMaxArch = 14;
enum class RopeScaling : uint32_t { None = 0, Linear = 1, Llama3 = 2, Yarn = 3, LongRope = 4 };
inline constexpr uint32_t kMaxRopeScaling = 4;
inline constexpr uint32_t kMaxPooling = 3;  // qrun::Pooling (include/qrun/embedding.h)

// HParams::flags: the layer recipe's optional steps (src/runtime/forward.cpp).
enum ArchFlags : uint32_t {
  kQkNorm = 1u << 0,             // RMSNorm of each q and k head before RoPE (Qwen3)
  kSandwichNorms = 1u << 1,      // norms after attention and after the FFN too (Gemma 2)
  kGeluTanh = 1u << 2,           // FFN gate activation: GELU (tanh form) instead of SiLU
  kEmbedScale = 1u << 3,         // embeddings times sqrt(dim) (Gemma)
  kSlidingEvenLayers = 1u << 4,  // sliding window on even layers only (Gemma 2)
  kNormTopK = 1u << 5,           // the chosen experts' router weights renormalized to sum 1 (Mixtral, Qwen3-MoE)
  kAttnSinks = 1u << 6,          // a learned logit per head joins each softmax's denominator (gpt-oss)
  kOutputBias = 1u << 7,         // the attention output projection has a bias (attention_bias in Llama's configs)
  kExpertBias = 1u << 8,         // the router and every expert's projections have biases (gpt-oss)
  kYarnUntruncated = 1u << 9,    // YaRN's ramp bounds kept fractional (rope_scaling.truncate false: gpt-oss)
};
inline constexpr uint32_t kKnownFlags = (1u << 10) - 1;

// Files before mixture-of-experts models end HParams at `pooling` (128 bytes); readers
// take that size as the fields after it zero.
inline constexpr uint64_t kHParamsSizeV1 = 128;

struct HParams {                    // 192 bytes (128 in older files: kHParamsSizeV1)
  uint32_t arch;                    // Arch
  uint32_t n_layers;
  uint32_t dim;                     // hidden size
  uint32_t hidden_dim;              // FFN width
  uint32_t n_heads;
  uint32_t n_kv_heads;
  uint32_t head_dim;
  uint32_t vocab_size;
  uint32_t max_seq_len;             // trained context
  uint32_t tied_embeddings;         // 1: output head reads tok_embeddings
  uint32_t attn_bias;               // 1: q/k/v biases present (Qwen2)
  uint32_t rope_scaling;            // RopeScaling
  float rope_theta;
  float norm_eps;
  float rope_factor;                // Linear and Llama3
  float rope_low_freq_factor;       // Llama3
  float rope_high_freq_factor;      // Llama3
  uint32_t rope_original_max_pos;   // Llama3
  uint32_t weight_type;             // DType of the big matrices (informational)
  uint32_t sliding_window;          // 0: none (Mistral may set it)
  uint32_t rotary_dim;              // dims of each head RoPE turns (partial rotary); 0: head_dim
  float rope_attn_factor;           // YaRN / LongRoPE scale of RoPE's cos and sin; 0: 1
  float rope_beta_fast;             // YaRN
  float rope_beta_slow;             // YaRN
  uint32_t flags;                   // ArchFlags
  float attn_softcap;               // scores = cap * tanh(scores / cap) (Gemma 2); 0: off
  float final_softcap;              // logits likewise; 0: off
  float query_scale;                // scale of q . k; 0: 1 / sqrt(head_dim)
  uint32_t sliding_period;          // with a window: every period-th layer attends globally (Gemma 3: 6); 0: all slide
  float rope_local_theta;           // RoPE base of the sliding layers, unscaled (Gemma 3); 0: rope_theta for all
  uint32_t nope_period;             // every nope_period-th layer has no RoPE (SmolLM3: 4); 0: all rotate
  uint32_t pooling;                 // embeddings' pooling, qrun::Pooling (llama.cpp's pooling_type); 0: unspecified
  // Mixture of experts: every layer's FFN is n_experts SwiGLU experts of hidden_dim, of
  // which a router picks n_experts_used per token. 0: a dense FFN.
  uint32_t n_experts;
  uint32_t n_experts_used;
  // Granite's multipliers (0: 1): embeddings times embedding_scale, each attention and
  // FFN output times residual_scale before it joins the residual stream, logits divided
  // by logit_scale.
  float embedding_scale;
  float residual_scale;
  float logit_scale;
  // Qwen2-MoE: the width of a shared expert every token runs beside its k experts, its
  // output weighted by sigmoid(shared_gate . x). 0: none.
  uint32_t shared_hidden_dim;
  // gpt-oss's clamped SwiGLU: gate clamped above and up on both sides at this limit, then
  // (up + 1) * gate * sigmoid(1.702 gate). 0: plain SwiGLU.
  float swiglu_limit;
  uint8_t reserved[36];             // zero
};
static_assert(sizeof(HParams) == 192);

struct TensorEntry {                // 128 bytes
  char name[64];                    // NUL-padded, e.g. "layers.3.wq"
  uint32_t dtype;                   // DType
  uint32_t n_dims;                  // 1 or 2
  uint64_t ne[2];                   // ne[0]: elements per row (columns); ne[1]: rows (1 for vectors)
  uint64_t offset;                  // absolute file offset, aligned
  uint64_t size;                    // bytes = ne[1] * dtype_row_bytes(dtype, ne[0])
  uint64_t checksum;                // XXH3-64 of the tensor's bytes
  int32_t layer;                    // owning layer, -1 for global tensors
  uint8_t reserved[12];
};
static_assert(sizeof(TensorEntry) == 128);

struct LayerRange {                 // 16 bytes: all tensors of one layer, contiguous
  uint64_t offset;                  // aligned
  uint64_t size;                    // multiple of the alignment
};
static_assert(sizeof(LayerRange) == 16);

static_assert(std::is_trivially_copyable_v<FileHeader> && std::is_trivially_copyable_v<TensorEntry>);

}  // namespace qrun::format
