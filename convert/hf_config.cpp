#include "convert/hf_config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "qrun/model_layout.h"
#include "src/format/arch_table.h"
#include "src/format/json_file.h"

namespace qrun {

using json = nlohmann::json;

namespace {

struct ConfigReader {
  const json& j;
  const std::string& file;

  uint32_t u32(const char* key) const {
    if (!j.contains(key)) throw Error(file, -1, std::string("missing field \"") + key + "\"");
    return u32_value(j[key], key);
  }
  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  uint32_t u32_or(const char* key, uint32_t fallback) const { return has(key) ? u32_value(j[key], key) : fallback; }
  float f32_or(const json& obj, const char* key, float fallback) const {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    if (!obj[key].is_number()) throw Error(file, -1, std::string("field \"") + key + "\" is not a number");
    const double v = obj[key].get<double>();
    // Casting a double outside float's range to float is undefined.
    if (!std::isfinite(v) || std::fabs(v) > std::numeric_limits<float>::max())
      throw Error(file, -1, std::string("field \"") + key + "\" is " + obj[key].dump() + ", outside the range of a float");
    return static_cast<float>(v);
  }
  // A count written as a JSON number (8192 or 8192.0), in [min, 2^32 - 1].
  uint32_t u32_number_or(const json& obj, const char* key, uint32_t fallback, uint32_t min) const {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    const json& v = obj[key];
    const double d = v.is_number() ? v.get<double>() : -1.0;
    if (!v.is_number() || !(d >= min && d <= 4294967295.0) || d != std::floor(d))
      throw Error(file, -1, std::string("field \"") + key + "\" is " + v.dump() + ", not an integer in [" +
                                std::to_string(min) + ", 4294967295]");
    return static_cast<uint32_t>(d);
  }
  bool bool_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j[key].is_boolean()) throw Error(file, -1, std::string("field \"") + key + "\" is not a boolean");
    return j[key].get<bool>();
  }
  uint32_t u32_value(const json& v, const char* key) const {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xffffffffu)
      throw Error(file, -1, std::string("field \"") + key + "\" is " + v.dump().substr(0, 40) +
                                ", not an integer in [0, 4294967295]");
    return v.get<uint32_t>();
  }
};

std::string arch_field(const json& j) {
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    return j["architectures"][0].get<std::string>();
  if (j.contains("model_type") && j["model_type"].is_string()) return j["model_type"].get<std::string>();
  return "";
}

// Multimodal checkpoints whose language model qrun runs: config.json nests its fields in
// text_config, the checkpoint its tensors under a prefix (see HfConfig::multimodal).
bool is_multimodal_gemma3(const std::string& name) {
  return name == "Gemma3ForConditionalGeneration" || name == "gemma3";
}

const ArchInfo& parse_arch(const std::string& name, const std::string& file) {
  if (const ArchInfo* a = find_arch(is_multimodal_gemma3(name) ? "Gemma3ForCausalLM" : name)) return *a;
  throw Error(file, -1, "unsupported architecture '" + (name.empty() ? std::string("(none given)") : name) +
                            "'; supported: " + supported_archs() + ", Gemma3ForConditionalGeneration (its text model)");
}

// transformers' Gemma3TextConfig defaults: a multimodal config.json's text_config leaves
// out every field that has its default (Gemma 3 4B lists five).
json gemma3_text_defaults() {
  return {{"vocab_size", 262208u}, {"hidden_size", 2304u}, {"intermediate_size", 9216u}, {"num_hidden_layers", 26u},
          {"num_attention_heads", 8u}, {"num_key_value_heads", 4u}, {"head_dim", 256u},
          {"hidden_activation", "gelu_pytorch_tanh"}, {"max_position_embeddings", 131072u}, {"rms_norm_eps", 1e-6},
          {"rope_theta", 1000000.0}, {"rope_local_base_freq", 10000.0}, {"query_pre_attn_scalar", 256u},
          {"sliding_window", 4096u}, {"sliding_window_pattern", 6u}, {"tie_word_embeddings", true}};
}

// A per-layer list (layer_types, no_rope_layers) whose `odd` layers must be every n-th
// one, as qrun stores a period: the period, 0 when no layer is odd.
uint32_t odd_layer_period(const ConfigReader& r, const char* field, uint32_t n_layers,
                          const std::vector<json>& allowed, const json& odd) {
  const json& list = r.j[field];
  if (!list.is_array() || list.size() != n_layers)
    throw Error(r.file, -1, std::string(field) + " must list one value per layer (" + std::to_string(n_layers) + ")");
  std::vector<bool> marked;
  for (const json& v : list) {
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      throw Error(r.file, -1, std::string(field) + " holds " + v.dump() + " (allowed: " + json(allowed).dump() + ")");
    marked.push_back(v == odd);
  }
  const auto first = std::find(marked.begin(), marked.end(), true);
  if (first == marked.end()) return 0;
  const uint32_t period = static_cast<uint32_t>(first - marked.begin()) + 1;
  for (size_t l = 0; l < marked.size(); ++l) {
    if (marked[l] == ((l + 1) % period == 0)) continue;
    std::string at;
    for (size_t i = 0; i < marked.size(); ++i)
      if (marked[i]) at += (at.empty() ? "" : ", ") + std::to_string(i);
    throw Error(r.file, -1, std::string(field) + ": " + odd.dump() + " must be every n-th layer (n-1, 2n-1, ...), " +
                                "as qrun stores a period; here it is layers " + at.substr(0, 200));
  }
  return period;
}

// Which layers slide: layer_types (newer transformers) or sliding_window_pattern.
void read_gemma3_layers(const ConfigReader& r, format::HParams& hp) {
  hp.sliding_window = r.u32_or("sliding_window", 0);
  if (r.has("layer_types")) {
    hp.sliding_period = odd_layer_period(r, "layer_types", hp.n_layers, {"sliding_attention", "full_attention"},
                                         "full_attention");
    return;
  }
  hp.sliding_period = r.u32_or("sliding_window_pattern", 6);
  if (hp.sliding_period == 0) throw Error(r.file, -1, "sliding_window_pattern is 0");
}

// gpt-oss: every other layer (the first included) attends in a window, its attention
// has learned sinks and biases, its experts biases and a clamped SwiGLU.
void read_gpt_oss(const ConfigReader& r, format::HParams& hp) {
  hp.sliding_window = r.u32("sliding_window");
  // transformers' default layer_types: sliding, full, sliding, ...
  hp.sliding_period = r.has("layer_types") ? odd_layer_period(r, "layer_types", hp.n_layers,
                                                              {"sliding_attention", "full_attention"}, "full_attention")
                                           : 2;
  hp.flags |= format::kAttnSinks | format::kExpertBias;
  hp.swiglu_limit = r.f32_or(r.j, "swiglu_limit", 7.0f);
  if (!(hp.swiglu_limit > 0.0f)) throw Error(r.file, -1, "swiglu_limit must be positive");
  if (r.j.contains("quantization_config") && r.j["quantization_config"].is_object()) {
    const json& q = r.j["quantization_config"];
    if (q.contains("quant_method") && q["quant_method"] != "mxfp4")
      throw Error(r.file, -1, "quantization_config.quant_method " + q["quant_method"].dump() +
                                  " is not supported (mxfp4 experts, or an unquantized checkpoint)");
  }
}

// SmolLM3's NoPE layers: no_rope_layers (1: RoPE, 0: none) or every no_rope_layer_interval-th.
void read_nope_layers(const ConfigReader& r, format::HParams& hp) {
  if (r.has("no_rope_layers")) {
    hp.nope_period = odd_layer_period(r, "no_rope_layers", hp.n_layers, {0, 1}, 0);
    return;
  }
  hp.nope_period = r.u32_or("no_rope_layer_interval", 4);
  if (hp.nope_period == 0) throw Error(r.file, -1, "no_rope_layer_interval is 0");
}

// Mixtral's, GraniteMoe's, Qwen3-MoE's and Qwen2-MoE's experts (and Qwen2-MoE's shared
// expert). The Qwen MoEs may keep dense FFNs on some layers (mlp_only_layers,
// decoder_sparse_step); the released models have none, and qrun's layer recipe takes
// experts on every layer or none.
void read_experts(const ConfigReader& r, format::Arch arch, format::HParams& hp) {
  // GraniteMoe names its fields as Mixtral does, and its softmax over the k largest
  // logits is Mixtral's renormalized top k.
  const bool mixtral = arch == format::Arch::Mixtral || arch == format::Arch::GraniteMoe || arch == format::Arch::GptOss;
  hp.n_experts = r.u32(mixtral ? "num_local_experts" : "num_experts");
  hp.n_experts_used = r.u32("num_experts_per_tok");
  if (hp.n_experts == 0 || hp.n_experts > format::kMaxExperts)
    throw Error(r.file, -1, std::string(mixtral ? "num_local_experts" : "num_experts") + " is " +
                                std::to_string(hp.n_experts) + " (1 to " + std::to_string(format::kMaxExperts) + ")");
  if (hp.n_experts_used == 0 || hp.n_experts_used > hp.n_experts)
    throw Error(r.file, -1, "num_experts_per_tok is " + std::to_string(hp.n_experts_used) + ", not 1 to " +
                                std::to_string(hp.n_experts) + " experts");
  // Mixtral renormalizes the chosen experts' weights always (gpt-oss's softmax over the k
  // largest logits is the same), Qwen3-MoE when norm_topk_prob.
  if (mixtral || r.bool_or("norm_topk_prob", false)) hp.flags |= format::kNormTopK;
  if (mixtral) return;
  hp.hidden_dim = r.u32("moe_intermediate_size");
  if (arch == format::Arch::Qwen2Moe) {
    hp.shared_hidden_dim = r.u32("shared_expert_intermediate_size");
    if (hp.shared_hidden_dim == 0) throw Error(r.file, -1, "shared_expert_intermediate_size is 0");
  }
  if (r.u32_or("decoder_sparse_step", 1) != 1)
    throw Error(r.file, -1, "decoder_sparse_step is " + std::to_string(r.u32_or("decoder_sparse_step", 1)) +
                                ": qrun runs experts on every layer (decoder_sparse_step 1)");
  if (r.has("mlp_only_layers") && !(r.j["mlp_only_layers"].is_array() && r.j["mlp_only_layers"].empty()))
    throw Error(r.file, -1, "mlp_only_layers is " + r.j["mlp_only_layers"].dump().substr(0, 80) +
                                ": qrun runs experts on every layer (an empty list)");
}

// Granite's four multipliers (transformers' defaults 1); attention_multiplier replaces
// 1/sqrt(head_dim) as the scale of q . k.
void read_granite_multipliers(const ConfigReader& r, format::HParams& hp) {
  auto positive = [&](const char* key) {
    const float v = r.f32_or(r.j, key, 1.0f);
    if (!(v > 0.0f)) throw Error(r.file, -1, std::string("field \"") + key + "\" must be positive");
    return v;
  };
  hp.embedding_scale = positive("embedding_multiplier");
  hp.residual_scale = positive("residual_multiplier");
  hp.query_scale = positive("attention_multiplier");
  hp.logit_scale = positive("logits_scaling");
  if (r.has("position_embedding_type") && r.j["position_embedding_type"] != "rope")
    throw Error(r.file, -1, "position_embedding_type " + r.j["position_embedding_type"].dump().substr(0, 40) +
                                " is not supported (rope)");
}

std::vector<float> factor_list(const ConfigReader& r, const json& rs, const char* key, size_t n) {
  if (!rs.contains(key) || !rs[key].is_array() || rs[key].size() != n)
    throw Error(r.file, -1, std::string("rope_scaling.") + key + " must be a list of " + std::to_string(n) +
                                " numbers (rotary dims / 2)");
  std::vector<float> out;
  for (const json& v : rs[key]) {
    if (!v.is_number() || !(v.get<double>() > 0 && v.get<double>() < 1e6))
      throw Error(r.file, -1, std::string("rope_scaling.") + key + " holds " + v.dump() + ", not a positive number");
    out.push_back(v.get<float>());
  }
  return out;
}

// A sentence-transformers embedding model (Qwen3-Embedding, e5-mistral) says how it pools
// in its Pooling module's config: modules.json names the module's folder (1_Pooling when
// there is no modules.json). Modes qrun does not pool by (max, weighted mean) stay
// unspecified: the model still converts, and embeddings take qserve's --pooling.
uint32_t sentence_transformers_pooling(const std::filesystem::path& dir) {
  std::filesystem::path folder = dir / "1_Pooling";
  if (std::filesystem::exists(dir / "modules.json")) {
    const json modules = read_json_file(dir / "modules.json");
    if (!modules.is_array()) throw Error((dir / "modules.json").string(), -1, "top level is not a JSON array");
    for (const json& m : modules)
      if (m.is_object() && m.contains("type") && m["type"] == "sentence_transformers.models.Pooling" &&
          m.contains("path") && m["path"].is_string()) {
        const std::filesystem::path sub = m["path"].get<std::string>();
        const bool inside = sub.is_relative() && std::none_of(sub.begin(), sub.end(), [](const auto& c) { return c == ".."; });
        if (!inside)
          throw Error((dir / "modules.json").string(), -1, "the Pooling module's path \"" + sub.string().substr(0, 80) +
                                                               "\" leaves the model folder");
        folder = dir / sub;
      }
  }
  const std::filesystem::path file = folder / "config.json";
  if (!std::filesystem::exists(file)) return 0;
  const json j = read_json_file(file);
  if (!j.is_object()) throw Error(file.string(), -1, "top level is not a JSON object");
  auto on = [&](const char* key) {
    if (!j.contains(key)) return false;
    if (!j[key].is_boolean()) throw Error(file.string(), -1, std::string("field \"") + key + "\" is not a boolean");
    return j[key].get<bool>();
  };
  const bool mean = on("pooling_mode_mean_tokens"), cls = on("pooling_mode_cls_token"),
             last = on("pooling_mode_lasttoken");
  if (mean + cls + last != 1) return 0;  // none of qrun's, or several concatenated
  return mean ? 1 : cls ? 2 : 3;         // qrun::Pooling
}

}  // namespace

HfConfig read_hf_config_full(const std::filesystem::path& dir) {
  const std::string file = (dir / "config.json").string();
  json j = read_json_file(dir / "config.json");
  if (!j.is_object()) throw Error(file, -1, "top level is not a JSON object");
  HfConfig out{};  // hp zeroed: unset fields mean "off"
  const std::string arch_name = arch_field(j);
  const format::Arch arch = parse_arch(arch_name, file).arch;
  if (arch == format::Arch::Gemma3) {
    out.multimodal = is_multimodal_gemma3(arch_name);
    const json& fields = out.multimodal ? j.value("text_config", json::object()) : j;
    if (!fields.is_object()) throw Error(file, -1, "text_config is not a JSON object");
    json merged = gemma3_text_defaults();
    merged.update(fields);
    j = std::move(merged);
  }
  const ConfigReader r{j, file};
  format::HParams& hp = out.hp;
  hp.arch = static_cast<uint32_t>(arch);
  hp.dim = r.u32("hidden_size");
  hp.hidden_dim = r.u32("intermediate_size");
  hp.n_layers = r.u32("num_hidden_layers");
  hp.n_heads = r.u32("num_attention_heads");
  hp.n_kv_heads = r.u32_or("num_key_value_heads", hp.n_heads);
  if (hp.n_heads == 0) throw Error(file, -1, "num_attention_heads is 0");
  hp.head_dim = r.u32_or("head_dim", hp.dim / hp.n_heads);
  hp.vocab_size = r.u32("vocab_size");
  hp.max_seq_len = r.u32_or("max_position_embeddings", 2048);
  // Gemma ties its head to the embedding unless told otherwise.
  hp.tied_embeddings = r.bool_or("tie_word_embeddings", arch == format::Arch::Gemma2 || arch == format::Arch::Gemma3) ? 1 : 0;
  // Qwen2-MoE's q/k/v biases: qkv_bias in newer configs, always on before it.
  hp.attn_bias = (arch == format::Arch::Qwen2 || r.bool_or("attention_bias", false) ||
                  (arch == format::Arch::Qwen2Moe && r.bool_or("qkv_bias", true)))
                     ? 1
                     : 0;
  hp.rope_theta = r.f32_or(j, "rope_theta", 10000.0f);
  hp.norm_eps = r.f32_or(j, "rms_norm_eps", 1e-6f);
  if (arch == format::Arch::Mistral || arch == format::Arch::Phi3 || arch == format::Arch::Gemma2)
    hp.sliding_window = r.u32_or("sliding_window", 0);
  if (arch == format::Arch::Qwen3 || arch == format::Arch::Qwen3Moe) hp.flags |= format::kQkNorm;
  if (arch == format::Arch::Mixtral) hp.sliding_window = r.u32_or("sliding_window", 0);
  // Llama's attention_bias puts a bias on the output projection too (Qwen2's q/k/v biases
  // come without one).
  if (arch != format::Arch::Qwen2 && arch != format::Arch::Qwen2Moe && r.bool_or("attention_bias", false))
    hp.flags |= format::kOutputBias;
  if (arch_has_experts(static_cast<uint32_t>(arch))) read_experts(r, arch, hp);
  if (arch == format::Arch::GptOss) read_gpt_oss(r, hp);
  if (arch == format::Arch::Granite || arch == format::Arch::GraniteMoe) read_granite_multipliers(r, hp);
  if (arch == format::Arch::Gemma2 || arch == format::Arch::Gemma3) {
    hp.flags |= format::kSandwichNorms | format::kEmbedScale;
    hp.query_scale = 1.0f / std::sqrt(r.f32_or(j, "query_pre_attn_scalar", static_cast<float>(hp.head_dim)));
    hp.attn_softcap = r.f32_or(j, "attn_logit_softcapping", 0.0f);
    hp.final_softcap = r.f32_or(j, "final_logit_softcapping", 0.0f);
  }
  if (arch == format::Arch::Gemma2) hp.flags |= format::kSlidingEvenLayers;
  if (arch == format::Arch::SmolLM3) read_nope_layers(r, hp);
  if (arch == format::Arch::Gemma3) {
    hp.flags |= format::kQkNorm;
    hp.rope_local_theta = r.f32_or(j, "rope_local_base_freq", 10000.0f);
    read_gemma3_layers(r, hp);
  }
  if (j.contains("partial_rotary_factor")) {
    const float f = r.f32_or(j, "partial_rotary_factor", 1.0f);
    if (!(f > 0.0f && f <= 1.0f)) throw Error(file, -1, "partial_rotary_factor must be in (0, 1]");
    hp.rotary_dim = static_cast<uint32_t>(static_cast<float>(hp.head_dim) * f) & ~1u;
  }
  const char* act_key = j.contains("hidden_activation") && !j["hidden_activation"].is_null() ? "hidden_activation" : "hidden_act";
  if (j.contains(act_key) && !j[act_key].is_null()) {
    const json& act = j[act_key];
    if (act == "gelu_pytorch_tanh" || act == "gelu_tanh" || (act == "gelu" && arch == format::Arch::Gemma2))
      hp.flags |= format::kGeluTanh;
    else if (act != "silu")
      throw Error(file, -1, "unsupported " + std::string(act_key) + " " + act.dump() + " (silu, gelu_pytorch_tanh)");
  }
  if (j.contains("mlp_bias") && j["mlp_bias"] == true) throw Error(file, -1, "mlp_bias is not supported");

  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) throw Error(file, -1, "rope_scaling is not an object");
    std::string type;
    if (rs.contains("rope_type") && rs["rope_type"].is_string()) type = rs["rope_type"];
    else if (rs.contains("type") && rs["type"].is_string()) type = rs["type"];
    hp.rope_factor = r.f32_or(rs, "factor", 1.0f);
    if (type == "linear") {
      hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Linear);
    } else if (type == "llama3") {
      hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Llama3);
      hp.rope_low_freq_factor = r.f32_or(rs, "low_freq_factor", 1.0f);
      hp.rope_high_freq_factor = r.f32_or(rs, "high_freq_factor", 4.0f);
      hp.rope_original_max_pos = r.u32_number_or(rs, "original_max_position_embeddings", 8192, 1);
    } else if (type == "yarn") {
      hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::Yarn);
      hp.rope_original_max_pos = r.u32_number_or(rs, "original_max_position_embeddings", hp.max_seq_len, 1);
      hp.rope_beta_fast = r.f32_or(rs, "beta_fast", 32.0f);
      hp.rope_beta_slow = r.f32_or(rs, "beta_slow", 1.0f);
      if (rs.contains("truncate") && rs["truncate"] == false) hp.flags |= format::kYarnUntruncated;
      // transformers' default attention factor: 0.1 ln(factor) + 1 (or the mscale ratio).
      auto mscale = [](float scale, float m) { return scale <= 1.0f ? 1.0f : 0.1f * m * std::log(scale) + 1.0f; };
      const float ms = r.f32_or(rs, "mscale", 0.0f), ms_all = r.f32_or(rs, "mscale_all_dim", 0.0f);
      hp.rope_attn_factor = r.f32_or(rs, "attention_factor", ms > 0 && ms_all > 0
                                                                  ? mscale(hp.rope_factor, ms) / mscale(hp.rope_factor, ms_all)
                                                                  : mscale(hp.rope_factor, 1.0f));
    } else if (type == "longrope" || type == "su") {
      hp.rope_scaling = static_cast<uint32_t>(format::RopeScaling::LongRope);
      hp.rope_original_max_pos = r.u32_number_or(j, "original_max_position_embeddings", hp.max_seq_len, 1);
      hp.rope_factor = std::max(1.0f, static_cast<float>(hp.max_seq_len) / static_cast<float>(hp.rope_original_max_pos));
      const float default_attn = hp.rope_factor <= 1.0f ? 1.0f
                                                        : std::sqrt(1.0f + std::log(hp.rope_factor) /
                                                                               std::log(static_cast<float>(hp.rope_original_max_pos)));
      hp.rope_attn_factor = r.f32_or(rs, "attention_factor", default_attn);
      const size_t half = (hp.rotary_dim ? hp.rotary_dim : hp.head_dim) / 2;
      out.rope_short_factors = factor_list(r, rs, "short_factor", half);
      out.rope_long_factors = factor_list(r, rs, "long_factor", half);
    } else if (type != "default") {
      throw Error(file, -1, "unsupported rope_scaling type '" + type + "' (supported: linear, llama3, yarn, longrope)");
    }
  }
  hp.pooling = sentence_transformers_pooling(dir);
  validate_hparams(hp, file, -1);
  return out;
}

}  // namespace qrun
