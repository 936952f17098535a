#include "convert/hf_config.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "qrun/model_layout.h"

namespace qrun {

using json = nlohmann::json;

namespace {

constexpr const char* kSupported =
    "LlamaForCausalLM (Llama 1/2/3, TinyLlama, SmolLM), MistralForCausalLM, Qwen2ForCausalLM";

struct ConfigReader {
  const json& j;
  const std::string& file;

  uint32_t u32(const char* key) const {
    if (!j.contains(key)) throw Error(file, -1, std::string("missing field \"") + key + "\"");
    return u32_value(j[key], key);
  }
  uint32_t u32_or(const char* key, uint32_t fallback) const {
    return j.contains(key) && !j[key].is_null() ? u32_value(j[key], key) : fallback;
  }
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
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_boolean()) throw Error(file, -1, std::string("field \"") + key + "\" is not a boolean");
    return j[key].get<bool>();
  }
  uint32_t u32_value(const json& v, const char* key) const {
    if (!v.is_number_unsigned() || v.get<uint64_t>() > 0xffffffffu)
      throw Error(file, -1, std::string("field \"") + key + "\" is not a non-negative integer");
    return v.get<uint32_t>();
  }
};

format::Arch parse_arch(const json& j, const std::string& file) {
  std::string name;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    name = j["architectures"][0].get<std::string>();
  else if (j.contains("model_type") && j["model_type"].is_string())
    name = j["model_type"].get<std::string>();
  if (name == "LlamaForCausalLM" || name == "llama") return format::Arch::Llama;
  if (name == "MistralForCausalLM" || name == "mistral") return format::Arch::Mistral;
  if (name == "Qwen2ForCausalLM" || name == "qwen2") return format::Arch::Qwen2;
  throw Error(file, -1, "unsupported architecture '" + (name.empty() ? std::string("(none given)") : name) +
                            "'; supported: " + kSupported);
}

}  // namespace

format::HParams read_hf_config(const std::filesystem::path& dir) {
  const std::string file = (dir / "config.json").string();
  std::ifstream in(file);
  if (!in) throw Error(file, -1, "cannot open");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(file, -1, std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) throw Error(file, -1, "top level is not a JSON object");
  const ConfigReader r{j, file};

  format::HParams hp{};
  const format::Arch arch = parse_arch(j, file);
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
  hp.tied_embeddings = r.bool_or("tie_word_embeddings", false) ? 1 : 0;
  hp.attn_bias = (arch == format::Arch::Qwen2 || r.bool_or("attention_bias", false)) ? 1 : 0;
  hp.rope_theta = r.f32_or(j, "rope_theta", 10000.0f);
  hp.norm_eps = r.f32_or(j, "rms_norm_eps", 1e-6f);
  if (arch == format::Arch::Mistral) hp.sliding_window = r.u32_or("sliding_window", 0);
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    throw Error(file, -1, "unsupported hidden_act " + j["hidden_act"].dump() + " (only silu)");
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
    } else if (type != "default") {
      throw Error(file, -1, "unsupported rope_scaling type '" + type + "' (supported: linear, llama3)");
    }
  }
  validate_hparams(hp, file, -1);
  return hp;
}

}  // namespace qrun
