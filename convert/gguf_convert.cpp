#include "convert/gguf_rope_order.h"
#include "convert/gguf_convert.h"

#include "quant/type_policy.h"

#include <sys/stat.h>

#include <cstddef>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "convert/gguf_quants.h"
#include "convert/gguf_tokenizer.h"
#include "qrun/error.h"
#include "src/format/arch_table.h"
#include "qrun/model_layout.h"
#include "qrun/tokenizer.h"
#include "quant/quantize.h"
#include "src/format/layer_tensor_name.h"
#include "src/runtime/rope.h"

namespace qrun {

namespace {

constexpr const char* kSupportedArchs =
    "llama (Llama 1/2/3, TinyLlama, Mistral, SmolLM, Mixtral), qwen2, qwen3, qwen3moe, qwen2moe, phi3, gemma2, gemma3, "
    "granite, granitemoe, gpt-oss";

uint32_t u32_of(const GgufFile& g, const std::string& key, uint64_t v) {
  if (v > 0xffffffffu) g.fail(g.find(key)->offset, "key '" + key + "' is " + std::to_string(v) + ", too large");
  return static_cast<uint32_t>(v);
}

float f32_of(const GgufFile& g, const std::string& key, double fallback) {
  const double v = g.get_float_or(key, fallback);
  if (!std::isfinite(v) || std::fabs(v) > 3.0e38) g.fail(g.find(key)->offset, "key '" + key + "' is not a finite float");
  return static_cast<float>(v);
}


// Where qrun has a block-identical type for a GGUF type (Q5_0: the same fields, which
// carry_row puts in q5's order).
bool carried_type(uint32_t ggml, DType* out) {
  switch (static_cast<GgmlType>(ggml)) {
    case GgmlType::F32: *out = DType::F32; return true;
    case GgmlType::F16: *out = DType::F16; return true;
    case GgmlType::BF16: *out = DType::BF16; return true;
    case GgmlType::Q8_0: *out = DType::Q8; return true;
    case GgmlType::Q4_0: *out = DType::Q4; return true;
    case GgmlType::Q5_0: *out = DType::Q5; return true;
    case GgmlType::IQ4_NL: *out = DType::Q4N; return true;
    case GgmlType::Q2_K: *out = DType::Q2K; return true;
    default: return false;
  }
}

// Whether byte `offset` of a block of type t starts an f16 scale.
bool is_f16_scale(DType t, int64_t offset) {
  if (t == DType::Q2K)
    return offset == static_cast<int64_t>(offsetof(BlockQ2K, d)) || offset == static_cast<int64_t>(offsetof(BlockQ2K, dmin));
  return offset == 0;
}

// One row of GGUF blocks as qrun stores them: as they are, or Q5_0's (d, qh, qs) as
// BlockQ5 (d, qs, qh) in its row's groups.
void carry_row(DType t, const uint8_t* in, int64_t bytes, uint8_t* out) {
  if (t != DType::Q5) {
    std::memcpy(out, in, static_cast<size_t>(bytes));
    return;
  }
  const int64_t nb = bytes / static_cast<int64_t>(sizeof(BlockQ5));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* src = in + b * static_cast<int64_t>(sizeof(BlockQ5));
    BlockQ5 blk;
    std::memcpy(&blk.d, src, 2);
    std::memcpy(blk.qh, src + 2, 4);
    std::memcpy(blk.qs, src + 6, 16);
    store_split_row_block(out, nb, b, blk);
  }
}

bool is_float_ggml(uint32_t t) {
  return t == static_cast<uint32_t>(GgmlType::F32) || t == static_cast<uint32_t>(GgmlType::F16) ||
         t == static_cast<uint32_t>(GgmlType::BF16) || t == static_cast<uint32_t>(GgmlType::F64);
}

// --type keep: the qrun type for a GGUF type qrun has no block-identical twin of: the
// narrowest with at least as many bits per weight (Q4_K -> q4n, Q6_K -> q8), so the
// re-quantization adds little error to what the file already has.
DType nearest_type(uint32_t t) {
  int64_t be, bb;
  if (!ggml_type_geometry(t, &be, &bb)) return DType::Q8;
  const double bits = 8.0 * static_cast<double>(bb) / static_cast<double>(be);
  for (DType d : {DType::Q3, DType::Q4N, DType::Q5, DType::Q6})
    if (dtype_bits_per_weight(d) >= bits) return d;
  return DType::Q8;
}

void check_llama3_rope_freqs(const GgufFile& g, const GgufTensorInfo& t, format::HParams& hp) {
  const int64_t half = hp.head_dim / 2;
  if (t.n_rows() != 1 || t.ne[0] != half || t.type != static_cast<uint32_t>(GgmlType::F32))
    g.fail(t.info_offset, "rope_freqs.weight is not " + std::to_string(half) + " f32 values");
  std::vector<float> factors(static_cast<size_t>(half));
  std::memcpy(factors.data(), g.tensor_data(t), static_cast<size_t>(half) * 4);
  float factor = 1.0f;
  for (float f : factors) {
    if (!std::isfinite(f) || f <= 0.0f) g.fail(t.info_offset, "rope_freqs.weight has a value that is not positive and finite");
    factor = std::max(factor, f);
  }
  // llama.cpp's converter stores Meta's llama3 scaling as per-frequency divisors; qrun
  // computes them from (factor, low, high, original context). Llama 3.1/3.2 use 1, 4
  // and 8192; the stored values must match that exactly enough.
  format::HParams plain = hp, scaled = hp;
  scaled.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Llama3);
  scaled.rope_factor = factor;
  scaled.rope_low_freq_factor = 1.0f;
  scaled.rope_high_freq_factor = 4.0f;
  scaled.rope_original_max_pos = 8192;
  const auto base = rope_inv_freq(plain), ours = rope_inv_freq(scaled);
  for (int64_t j = 0; j < half; ++j) {
    const double want = base[static_cast<size_t>(j)] / ours[static_cast<size_t>(j)];
    if (std::fabs(want - factors[static_cast<size_t>(j)]) > 1e-3 * want)
      g.fail(t.info_offset, "rope_freqs.weight[" + std::to_string(j) + "] is " + std::to_string(factors[size_t(j)]) +
                                ", not llama3 rope scaling (factor " + std::to_string(factor) +
                                ", low 1, high 4, original context 8192) which gives " + std::to_string(want) +
                                "; other rope frequency tables are not supported");
  }
  hp = scaled;
}

// A float GGUF vector tensor's rows as f32, each value finite.
std::vector<float> float_rows(const GgufFile& g, const std::string& name, int64_t cols, int64_t rows) {
  const GgufTensorInfo* t = g.tensor(name);
  if (!t) throw Error(g.path(), -1, "GGUF file lacks tensor '" + name + "'");
  if (!is_float_ggml(t->type) || t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
    g.fail(t->info_offset, "tensor '" + name + "' is not " + std::to_string(cols) + " x " + std::to_string(rows) + " floats");
  std::vector<float> v(static_cast<size_t>(cols * rows));
  gguf_dequantize_row(t->type, g.tensor_data(*t), cols * rows, v.data());
  for (const float x : v)
    if (!std::isfinite(x)) g.fail(t->info_offset, "tensor '" + name + "' has a non-finite value");
  return v;
}

// gpt-oss's gate and up biases, which llama.cpp writes apart ([hidden, experts] each) and
// qrun keeps interleaved as the checkpoint has them: each expert's gate 0, up 0, gate 1, ...
TensorToWrite interleaved_gate_up_bias(const GgufFile& g, const TensorSpec& spec, const format::HParams& hp,
                                       std::set<std::string>& used) {
  const std::string blk = "blk." + std::to_string(spec.layer) + ".";
  const int64_t hidden = hp.hidden_dim, experts = hp.n_experts;
  const auto gate = std::make_shared<std::vector<float>>(float_rows(g, blk + "ffn_gate_exps.bias", hidden, experts));
  const auto up = std::make_shared<std::vector<float>>(float_rows(g, blk + "ffn_up_exps.bias", hidden, experts));
  used.insert(blk + "ffn_gate_exps.bias");
  used.insert(blk + "ffn_up_exps.bias");
  TensorToWrite t{spec.name, DType::F32, spec.cols, spec.rows, spec.n_dims, spec.layer, {}};
  t.fill = [gate, up, hidden](int64_t b, int64_t e, uint8_t* out) {
    float* o = reinterpret_cast<float*>(out);
    for (int64_t r = b; r < e; ++r)
      for (int64_t j = 0; j < hidden; ++j) {
        *o++ = (*gate)[static_cast<size_t>(r * hidden + j)];
        *o++ = (*up)[static_cast<size_t>(r * hidden + j)];
      }
  };
  return t;
}

}  // namespace

bool is_gguf_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

std::string gguf_tensor_name(const std::string& name, uint32_t arch) { return source_tensor_name(name, arch, true); }

format::HParams gguf_hparams(const GgufFile& g) {
  const GgufKV* arch_kv = g.find("general.architecture");
  if (!arch_kv) throw Error(g.path(), -1, "metadata key 'general.architecture' is missing");
  const std::string arch = g.get_string("general.architecture");
  format::HParams hp{};
  if (arch == "llama") hp.arch = static_cast<uint32_t>(format::Arch::Llama);
  else if (arch == "qwen2") hp.arch = static_cast<uint32_t>(format::Arch::Qwen2), hp.attn_bias = 1;
  else if (arch == "qwen3") hp.arch = static_cast<uint32_t>(format::Arch::Qwen3), hp.flags = format::kQkNorm;
  else if (arch == "qwen3moe") hp.arch = static_cast<uint32_t>(format::Arch::Qwen3Moe), hp.flags = format::kQkNorm;
  else if (arch == "qwen2moe") hp.arch = static_cast<uint32_t>(format::Arch::Qwen2Moe), hp.attn_bias = 1;
  else if (arch == "phi3") hp.arch = static_cast<uint32_t>(format::Arch::Phi3);
  else if (arch == "granite") hp.arch = static_cast<uint32_t>(format::Arch::Granite);
  else if (arch == "granitemoe") hp.arch = static_cast<uint32_t>(format::Arch::GraniteMoe);
  else if (arch == "gpt-oss")
    hp.arch = static_cast<uint32_t>(format::Arch::GptOss), hp.attn_bias = 1,
    hp.flags = format::kAttnSinks | format::kOutputBias | format::kExpertBias;
  else if (arch == "gemma2")
    hp.arch = static_cast<uint32_t>(format::Arch::Gemma2),
    hp.flags = format::kSandwichNorms | format::kGeluTanh | format::kEmbedScale | format::kSlidingEvenLayers;
  else if (arch == "gemma3")
    hp.arch = static_cast<uint32_t>(format::Arch::Gemma3),
    hp.flags = format::kSandwichNorms | format::kGeluTanh | format::kEmbedScale | format::kQkNorm;
  else
    g.fail(arch_kv->offset, "unsupported GGUF architecture '" + arch.substr(0, 60) + "'; supported: " + kSupportedArchs);
  const std::string p = arch + ".";
  auto u32 = [&](const std::string& key) { return u32_of(g, p + key, g.get_uint(p + key)); };
  auto u32_or = [&](const std::string& key, uint32_t fb) { return u32_of(g, p + key, g.get_uint_or(p + key, fb)); };
  hp.n_layers = u32("block_count");
  hp.dim = u32("embedding_length");
  hp.hidden_dim = u32("feed_forward_length");
  hp.n_heads = u32("attention.head_count");
  hp.n_kv_heads = u32_or("attention.head_count_kv", hp.n_heads);
  if (hp.n_heads == 0) g.fail(g.find(p + "attention.head_count")->offset, "attention.head_count is 0");
  hp.head_dim = u32_or("attention.key_length", hp.dim / hp.n_heads);
  if (g.find(p + "attention.value_length") && u32("attention.value_length") != hp.head_dim)
    g.fail(g.find(p + "attention.value_length")->offset, "attention.value_length differs from the key length " +
                                                             std::to_string(hp.head_dim) + " (not supported)");
  if (g.find(p + "rope.dimension_count") && u32("rope.dimension_count") != hp.head_dim) {
    const uint32_t rot = u32("rope.dimension_count");
    if (hp.arch != static_cast<uint32_t>(format::Arch::Phi3) || rot % 2 != 0 || rot > hp.head_dim)
      g.fail(g.find(p + "rope.dimension_count")->offset, "rope.dimension_count " + std::to_string(rot) +
                                                            " is not the head size " + std::to_string(hp.head_dim) +
                                                            " (partial rotary: phi3 only)");
    hp.rotary_dim = rot;
  }
  hp.max_seq_len = u32("context_length");
  // Experts: llama.cpp writes Mixtral as "llama" with an expert count. Its qwen3moe,
  // granitemoe and llama graphs renormalize the chosen experts' weights (as the released
  // models do), its qwen2moe graph does not (nor does Qwen1.5-MoE), and qwen2moe adds a
  // shared expert.
  const bool qwen2moe = hp.arch == static_cast<uint32_t>(format::Arch::Qwen2Moe);
  if (const uint32_t experts = u32_or("expert_count", 0)) {
    if (hp.arch == static_cast<uint32_t>(format::Arch::Llama)) hp.arch = static_cast<uint32_t>(format::Arch::Mixtral);
    else if (!arch_has_experts(hp.arch))
      g.fail(g.find(p + "expert_count")->offset,
             arch + " with experts is not supported (llama, qwen3moe, qwen2moe, granitemoe and gpt-oss are)");
    hp.n_experts = experts;
    hp.n_experts_used = u32("expert_used_count");
    if (qwen2moe) {
      if (g.get_bool_or(p + "expert_weights_norm", false))
        g.fail(g.find(p + "expert_weights_norm")->offset, "qwen2moe with renormalized expert weights (not supported in GGUF)");
      hp.shared_hidden_dim = u32("expert_shared_feed_forward_length");
    } else {
      hp.flags |= format::kNormTopK;
      if (!g.get_bool_or(p + "expert_weights_norm", true))
        g.fail(g.find(p + "expert_weights_norm")->offset, "expert weights that are not renormalized (not supported in GGUF)");
    }
    hp.hidden_dim = u32_or("expert_feed_forward_length", hp.hidden_dim);
  } else if (arch_has_experts(hp.arch)) {
    throw Error(g.path(), -1, "metadata key '" + p + "expert_count' is missing");
  }
  // llama.cpp's pooling_type: mean, cls and last are qrun's; none and rank stay unspecified.
  if (const uint32_t pooling = u32_or("pooling_type", 0); pooling <= format::kMaxPooling) hp.pooling = pooling;
  hp.rope_theta = f32_of(g, p + "rope.freq_base", 10000.0);
  if (!g.find(p + "attention.layer_norm_rms_epsilon"))
    throw Error(g.path(), -1, "metadata key '" + p + "attention.layer_norm_rms_epsilon' is missing");
  hp.norm_eps = f32_of(g, p + "attention.layer_norm_rms_epsilon", 1e-5);
  const auto& tokens = g.get_string_array("tokenizer.ggml.tokens");
  hp.vocab_size = static_cast<uint32_t>(std::min<size_t>(tokens.size(), 0xffffffffu));
  if (g.find(p + "vocab_size") && u32("vocab_size") != hp.vocab_size)
    g.fail(g.find(p + "vocab_size")->offset, "vocab_size " + std::to_string(u32("vocab_size")) +
                                                 " differs from the " + std::to_string(hp.vocab_size) + " tokens");
  hp.tied_embeddings = g.tensor("output.weight") ? 0 : 1;
  if (hp.arch == static_cast<uint32_t>(format::Arch::Phi3)) {
    hp.sliding_window = u32_or("attention.sliding_window", 0);
    // LongRoPE: llama.cpp stores its factors as tensors and the original context as a key.
    if (g.tensor("rope_factors_long.weight") || g.tensor("rope_factors_short.weight")) {
      hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::LongRope);
      hp.rope_original_max_pos = u32_or("rope.scaling.original_context_length", hp.max_seq_len);
      hp.rope_factor = std::max(1.0f, static_cast<float>(hp.max_seq_len) / static_cast<float>(hp.rope_original_max_pos));
      const double fallback = hp.rope_factor <= 1.0f ? 1.0
                                                     : std::sqrt(1.0 + std::log(hp.rope_factor) /
                                                                           std::log(double(hp.rope_original_max_pos)));
      hp.rope_attn_factor = f32_of(g, p + "rope.scaling.attn_factor", fallback);
    }
  }
  if (hp.arch == static_cast<uint32_t>(format::Arch::Granite) || hp.arch == static_cast<uint32_t>(format::Arch::GraniteMoe)) {
    // Granite's multipliers; an attention scale of 0 (or none) is llama.cpp's 1/sqrt(head_dim).
    auto positive = [&](const char* key) {
      const float v = f32_of(g, p + key, 1.0);
      if (!(v > 0.0f)) g.fail(g.find(p + key)->offset, p + key + " must be positive");
      return v;
    };
    hp.embedding_scale = positive("embedding_scale");
    hp.residual_scale = positive("residual_scale");
    hp.logit_scale = positive("logit_scale");
    hp.query_scale = f32_of(g, p + "attention.scale", 0.0);
  }
  if (hp.arch == static_cast<uint32_t>(format::Arch::Gemma2)) {
    // GGUF keeps no query_pre_attn_scalar; llama.cpp takes 1/sqrt(dim / heads) for the
    // 46-layer 27B and 1/sqrt(head_dim) (the default) otherwise, as the checkpoints have it.
    if (hp.n_layers == 46) hp.query_scale = 1.0f / std::sqrt(static_cast<float>(hp.dim) / static_cast<float>(hp.n_heads));
    hp.attn_softcap = f32_of(g, p + "attn_logit_softcapping", 0.0);
    hp.final_softcap = f32_of(g, p + "final_logit_softcapping", 0.0);
    hp.sliding_window = u32_or("attention.sliding_window", 0);
  }
  if (hp.arch == static_cast<uint32_t>(format::Arch::GptOss)) {
    // Not in the file; llama.cpp fixes them for gpt-oss as its config.json has them: every
    // other layer (the first included) in the window, the SwiGLU clamped at 7, and YaRN's
    // ramp left fractional (rope_scaling.truncate false).
    hp.sliding_window = u32("attention.sliding_window");
    hp.sliding_period = 2;
    hp.swiglu_limit = 7.0f;
    hp.flags |= format::kYarnUntruncated;
  }
  if (hp.arch == static_cast<uint32_t>(format::Arch::Gemma3)) {
    // Not in the file; llama.cpp fixes them for gemma3 as every checkpoint has them: every
    // 6th layer global, the sliding layers' RoPE base 10,000 unscaled, and the 62-layer
    // 27B's query scale 1/sqrt(dim / heads) (1/sqrt(head_dim) otherwise).
    hp.sliding_window = u32_or("attention.sliding_window", 0);
    hp.sliding_period = 6;
    hp.rope_local_theta = 10000.0f;
    if (hp.n_layers == 62) hp.query_scale = 1.0f / std::sqrt(static_cast<float>(hp.dim) / static_cast<float>(hp.n_heads));
  }

  // Rope scaling: rope.scaling.type (linear; yarn is refused), the older
  // rope.scale_linear, or llama3's rope_freqs.weight table.
  const std::string scaling = g.get_string_or(p + "rope.scaling.type", "none");
  if (scaling == "linear") {
    hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Linear);
    hp.rope_factor = f32_of(g, p + "rope.scaling.factor", 1.0);
  } else if (scaling == "yarn") {
    hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Yarn);
    hp.rope_factor = f32_of(g, p + "rope.scaling.factor", 1.0);
    hp.rope_original_max_pos = u32_or("rope.scaling.original_context_length", hp.max_seq_len);
    hp.rope_beta_fast = f32_of(g, p + "rope.scaling.yarn_beta_fast", 32.0);
    hp.rope_beta_slow = f32_of(g, p + "rope.scaling.yarn_beta_slow", 1.0);
    // transformers' default when the file does not say: 0.1 ln(factor) + 1.
    hp.rope_attn_factor = f32_of(g, p + "rope.scaling.attn_factor",
                                 hp.rope_factor > 1.0f ? 0.1 * std::log(hp.rope_factor) + 1.0 : 1.0);
  } else if (scaling != "none") {
    g.fail(g.find(p + "rope.scaling.type")->offset,
           "rope scaling '" + scaling.substr(0, 40) + "' is not supported (none, linear, yarn, llama3)");
  } else if (g.find(p + "rope.scale_linear")) {
    const float f = f32_of(g, p + "rope.scale_linear", 1.0);
    if (f != 1.0f) hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Linear), hp.rope_factor = f;
  }
  if (const GgufTensorInfo* rf = g.tensor("rope_freqs.weight")) {
    if (hp.rope_scaling != 0) g.fail(rf->info_offset, "rope_freqs.weight together with rope.scaling.type '" + scaling + "'");
    validate_hparams(hp, g.path(), -1);  // head_dim checked before it sizes the table
    check_llama3_rope_freqs(g, *rf, hp);
  }
  validate_hparams(hp, g.path(), -1);
  return hp;
}

WriteSummary convert_gguf(const std::string& gguf_path, const std::string& out_path, const ConvertOptions& options,
                          const GgufImportOptions& gopt) {
  if (!gopt.keep_types && options.weight_type == DType::BF16)
    throw Error(out_path, -1, "bf16 output is not a converter type");
  const GgufFile g(gguf_path);
  format::HParams hp = gguf_hparams(g);
  const bool permute_qk = gguf_permutes_qk(hp.arch);
  const auto tokenizer = tokenizer_from_gguf(g);
  const std::vector<uint8_t> tok_blob = serialize_tokenizer(*tokenizer);
  // With --calibrate, the column importance of every re-quantized matrix (blocks carried
  // as they are keep their own error).
  const InputStats input_stats =
      options.calibration.text_file.empty()
          ? InputStats{}
          : calibrate_on_f16_copy(options.calibration, options.threads, [&](const std::string& f16_path) {
              ConvertOptions f16;
              f16.weight_type = DType::F16;
              f16.threads = options.threads;
              f16.progress = options.calibration.convert_progress;
              GgufImportOptions quiet;  // the conversion itself warns about re-quantized tensors
              quiet.warn = [](const std::string&) {};
              convert_gguf(gguf_path, f16_path, f16, quiet);
            });

  std::vector<TensorToWrite> out;
  std::set<std::string> used;
  std::map<std::string, std::vector<std::string>> requantized;  // "Q4_K -> q8" -> tensor names
  DType main_type = options.weight_type;  // informational HParams.weight_type: layer 0's wq
  const TypePolicy policy = type_policy(options);
  const std::vector<TensorSpec> tensors = expected_tensors(hp);
  if (!gopt.keep_types) check_rules_match(policy, tensors);
  for (const TensorSpec& spec : tensors) {
    if (spec.name.ends_with(".experts_gate_up_bias")) {
      out.push_back(interleaved_gate_up_bias(g, spec, hp, used));
      continue;
    }
    const std::string src_name = gguf_tensor_name(spec.name, hp.arch);
    const GgufTensorInfo* src = g.tensor(src_name);
    if (!src) throw Error(gguf_path, -1, "GGUF file lacks tensor '" + src_name + "'");
    used.insert(src_name);
    int layer = -1;
    TensorRecipe recipe = find_recipe(spec.name, hp.arch, &layer);
    // Experts: one 3-D tensor [cols, rows per expert, experts] per role, stacked as qrun
    // stores them (llama.cpp splits GraniteMoe's fused gate and up).
    if (is_experts(recipe.part)) recipe.part = Part::Experts;
    const int64_t experts = recipe.part == Part::Experts ? hp.n_experts : 1;
    // A fused source (phi3's attn_qkv, ffn_up) holds this tensor's rows after others'.
    const int64_t src_rows = source_rows(recipe, hp), first_row = part_row_offset(recipe.part, hp);
    bool shape_ok = src->ne[0] == spec.cols && src->ne[1] == src_rows && src->ne[2] == experts && src->ne[3] == 1;
    if (!shape_ok) {
      std::string got;
      for (uint32_t d = 0; d < src->n_dims; ++d) got += (d ? ", " : "") + std::to_string(src->ne[d]);
      g.fail(src->info_offset, "tensor '" + src_name + "' has ne [" + got + "], the metadata implies [" +
                                   std::to_string(spec.cols) + (spec.n_dims == 2 ? ", " + std::to_string(src_rows) : "") +
                                   (experts > 1 ? ", " + std::to_string(experts) : "") + "]");
    }
    if (!gguf_can_dequantize(src->type))
      g.fail(src->info_offset, "tensor '" + src_name + "' has type " + ggml_type_name(src->type) +
                                   ", which qrun cannot convert (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, "
                                   "Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, MXFP4)");
    DType dst;
    DType same;
    const bool has_twin = carried_type(src->type, &same);
    if (gopt.keep_types) {
      const bool vector = storage_type_for(spec.name, TypePolicy{DType::Q8, false, {}}) == DType::F32;
      if (vector) dst = DType::F32;
      else if (has_twin) dst = same;
      else if (spec.name == "tok_embeddings") dst = DType::F16;
      else dst = nearest_type(src->type);
    } else {
      dst = storage_type_for(spec.name, spec.cols, policy);
    }
    // MXFP4 (gpt-oss's experts) stays MXFP4, exactly, in a quantized file unless a
    // --tensor-type rule names it, as the safetensors conversion keeps it. (Only blocks
    // made into other blocks or f16 lose anything: f32 holds any block's values.)
    const bool mxfp4 = src->type == static_cast<uint32_t>(GgmlType::MXFP4);
    if (mxfp4 && (gopt.keep_types || (dtype_is_quantized(dst) && !rule_names(policy, spec.name)))) dst = DType::Mx4;
    const bool carry = has_twin && same == dst;
    if (!carry && !is_float_ggml(src->type) && dst != DType::F32 && !(mxfp4 && dst == DType::Mx4))
      requantized[ggml_type_name(src->type) + " -> " + std::string(dtype_name(dst))].push_back(src_name);
    if (spec.name == "layers.0.wq") main_type = dst;

    int64_t be, bb;
    ggml_type_geometry(src->type, &be, &bb);
    const int64_t src_row_bytes = spec.cols / be * bb;
    const bool permute = permute_qk && (spec.name.ends_with(".wq") || spec.name.ends_with(".wk"));
    TensorToWrite t;
    t.name = spec.name;
    t.dtype = dst;
    t.cols = spec.cols;
    t.rows = spec.rows;
    t.n_dims = spec.n_dims;
    t.layer = spec.layer;
    const uint8_t* base = g.tensor_data(*src) + first_row * src_row_bytes;
    const int64_t head_dim = hp.head_dim;
    std::vector<float> importance;
    if (!carry && dtype_is_quantized(dst)) importance = column_importance(input_stats, spec.name, spec.cols, gguf_path);
    t.fill = [&g, src, base, src_row_bytes, carry, permute, head_dim, dst, cols = spec.cols,
              importance = std::move(importance)](int64_t b, int64_t e, uint8_t* out_rows) {
      std::vector<float> row(static_cast<size_t>(cols));
      const int64_t dst_row_bytes = dtype_row_bytes(dst, cols);
      for (int64_t r = b; r < e; ++r) {
        const int64_t sr = permute ? gguf_unpermuted_row(r, head_dim) : r;
        const uint8_t* in = base + sr * src_row_bytes;
        uint8_t* o = out_rows + (r - b) * dst_row_bytes;
        if (carry && dtype_is_quantized(dst)) {
          // Blocks carried as they are: only the f16 scales need checking.
          const int64_t block = dtype_block_bytes(dst);
          for (int64_t k = 0; k < src_row_bytes; k += 2) {
            if (!is_f16_scale(dst, k % block)) continue;
            uint16_t d;
            std::memcpy(&d, in + k, 2);
            if ((d & 0x7c00) == 0x7c00)
              throw Error(g.path(), static_cast<int64_t>(src->offset + static_cast<uint64_t>(sr * src_row_bytes + k)),
                          "tensor '" + src->name + "' row " + std::to_string(sr) + " has a non-finite block scale");
          }
          carry_row(dst, in, src_row_bytes, o);
          continue;
        }
        gguf_dequantize_row(src->type, in, cols, row.data());
        for (int64_t c = 0; c < cols; ++c)
          if (!std::isfinite(row[static_cast<size_t>(c)]))
            throw Error(g.path(), static_cast<int64_t>(src->offset),
                        "tensor '" + src->name + "' has a non-finite value (" +
                            (std::isnan(row[static_cast<size_t>(c)]) ? "nan" : "inf") + ") at [" + std::to_string(sr) +
                            ", " + std::to_string(c) + "]");
        if (carry) std::memcpy(o, in, static_cast<size_t>(src_row_bytes));  // floats: bit for bit
        else quantize_row(dst, row.data(), cols, o, importance.empty() ? nullptr : importance.data());
      }
    };
    out.push_back(std::move(t));
  }
  for (const GgufTensorInfo& t : g.tensors()) {
    if (used.count(t.name) || t.name == "rope_freqs.weight") continue;
    std::string why = "is not used by the model the metadata describes";
    int layer = -1;
    std::string role;
    if (split_layer_name(t.name, "blk.", &layer, &role) && uint32_t(layer) >= hp.n_layers)
      why = "belongs to a layer beyond block_count " + std::to_string(hp.n_layers);
    g.fail(t.info_offset, "GGUF tensor '" + t.name + "' " + why);
  }
  hp.weight_type = static_cast<uint32_t>(main_type);

  for (const auto& [what, names] : requantized) {
    std::string msg = "re-quantizing " + std::to_string(names.size()) + " tensor" + (names.size() > 1 ? "s" : "") + " " +
                      what + " (dequantized from the GGUF's blocks: quantization error adds up):";
    for (const auto& n : names) msg += " " + n;
    if (gopt.warn) gopt.warn(msg);
    else std::fprintf(stderr, "qconvert: warning: %s\n", msg.c_str());
  }
  WriteOptions wo;
  wo.threads = options.threads;
  wo.progress = options.progress;
  return write_model_file(out_path, hp, tok_blob, out, wo);
}

}  // namespace qrun
