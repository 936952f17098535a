#include "quant/type_policy.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <stdexcept>

#include "src/format/layer_tensor_name.h"

namespace qrun {

namespace {

struct PresetName {
  const char* name;
  DType base;
};
constexpr PresetName kPresets[] = {{"q2m", DType::Q2K}, {"q3m", DType::Q3}, {"q4m", DType::Q4N}, {"q5m", DType::Q5}};
constexpr DType kPlain[] = {DType::Q8,  DType::Q6, DType::Q5, DType::Q4N, DType::Q4,
                            DType::Mx4, DType::Q3, DType::Q2K, DType::F16, DType::F32};

bool is_vector(const std::string& name) {
  return name == "norm" || name.ends_with("_norm") || name.ends_with(".bq") || name.ends_with(".bk") ||
         name.ends_with(".bv") || name.ends_with(".bo") || name.ends_with(".shared_gate") || name.ends_with("_bias") ||
         name.ends_with(".attn_sinks") || name.rfind("rope_factors", 0) == 0;
}

}  // namespace

bool parse_type_policy(std::string_view name, TypePolicy* out) {
  for (const PresetName& p : kPresets) {
    if (name == p.name) {
      *out = TypePolicy{p.base, true, {}};
      return true;
    }
  }
  DType t;
  if (!dtype_from_name(name, &t) || t == DType::BF16) return false;
  *out = TypePolicy{t, false, {}};
  return true;
}

TensorTypeRule parse_tensor_type_rule(const std::string& text) {
  const size_t eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument("'" + text + "' is not PATTERN=TYPE (e.g. w2=q6)");
  const std::string pattern = text.substr(0, eq), type_name = text.substr(eq + 1);
  // A tensor name is a few dozen characters. std::regex compiles a pattern recursively,
  // so a long one could exhaust the stack before it is refused, and reads the numbers
  // of repeats and back-references into a long that a 20-digit one overflows.
  if (pattern.size() > kMaxPatternLength)
    throw std::invalid_argument("'" + text.substr(0, 40) + "...': pattern longer than " +
                                std::to_string(kMaxPatternLength) + " characters");
  size_t digits = 0;  // in a row
  for (char c : pattern) {
    digits = std::isdigit(static_cast<unsigned char>(c)) ? digits + 1 : 0;
    if (digits > kMaxPatternDigits)
      throw std::invalid_argument("'" + text + "': a number in the pattern has more than " +
                                  std::to_string(kMaxPatternDigits) + " digits");
  }
  DType t;
  if (!dtype_from_name(type_name, &t) || t == DType::BF16)
    throw std::invalid_argument("'" + text + "': unknown type '" + type_name + "'");
  try {
    return {pattern, std::regex(pattern), t};
  } catch (const std::regex_error& e) {
    throw std::invalid_argument("'" + text + "': bad pattern (" + e.what() + ")");
  }
}

std::string type_policy_name(const TypePolicy& p) {
  if (p.mixed)
    for (const PresetName& preset : kPresets)
      if (preset.base == p.base) return preset.name;
  return std::string(dtype_name(p.base));
}

std::vector<TypePolicy> type_policies() {
  std::vector<TypePolicy> out;
  for (DType t : kPlain) out.push_back(TypePolicy{t, false, {}});
  for (const PresetName& p : kPresets) out.push_back(TypePolicy{p.base, true, {}});
  return out;
}

std::string type_policy_choices() {
  std::string s;
  char buf[64];
  for (DType t : kPlain) {
    std::snprintf(buf, sizeof buf, "%s%s (%.4g)", s.empty() ? "" : ", ", std::string(dtype_name(t)).c_str(),
                  dtype_bits_per_weight(t));
    s += buf;
  }
  for (const PresetName& p : kPresets) {
    std::snprintf(buf, sizeof buf, ", %s (%s + %s)", p.name, std::string(dtype_name(p.base)).c_str(),
                  std::string(dtype_name(upgraded_type(p.base))).c_str());
    s += buf;
  }
  return s;
}

DType upgraded_type(DType base) {
  switch (base) {
    case DType::Q2K: return DType::Q4N;
    case DType::Q3: return DType::Q5;
    case DType::Q4:
    case DType::Q4N: return DType::Q6;
    case DType::Q5:
    case DType::Q6: return DType::Q8;
    default: return base;
  }
}

// Chosen by measurement: q4n everywhere, then one role at a time with q6, mean KLD on
// tinyshakespeare (6 x 512) against the model's own f16 (2026-12-02, bench notes in the
// README's quality section). Per added bit/weight, attention's value projection paid
// most on all three models, its output projection on the two synthetic ones (stories260K:
// wo -3% for +0.18): synthetic smollm-135m wv -23% KLD for +0.06
// bits/weight, wo -27% for +0.19, both -62% for +0.25; synthetic tinyllama all of
// wv/wo/output -22% for +0.33; stories260K wv -8% for +0.09. The FFN (w1/w2/w3) and wq/wk
// gave 0-13% for 0.25-1.0 bits/weight on the synthetic models (stories260K, 64 wide:
// wq/wk -23% for +0.27), and the output head alone 0.5% on tinyllama, but it is kept: it decides every logit and real models' heads
// are known to be sensitive (llama.cpp's _M types give it 6 bits too).
// The same roles in q2m (q2k + q4n) took synthetic tinyllama's KLD from 1.46 to 1.32 for
// +0.31 bits/weight (2026-12-03), below llama.cpp's Q2_K mix (1.55 at 3.17 bits/weight).
bool preset_upgrades(const std::string& name) {
  if (name == "output") return true;
  int layer;
  std::string role;
  if (!split_layer_name(name, "layers.", &layer, &role)) return false;
  return role == "wv" || role == "wo";
}

void check_rules_match(const TypePolicy& policy, const std::vector<TensorSpec>& tensors) {
  for (const TensorTypeRule& r : policy.rules) {
    const bool matched = std::any_of(tensors.begin(), tensors.end(), [&](const TensorSpec& t) {
      return !is_vector(t.name) && std::regex_search(t.name, r.re);
    });
    if (!matched)
      throw std::invalid_argument("--tensor-type '" + r.pattern + "=" + std::string(dtype_name(r.type)) +
                                  "' matches none of this model's matrices (names as in qconvert --info: "
                                  "tok_embeddings, layers.N.wq ... w3, output; norms stay f32)");
  }
}

bool rule_names(const TypePolicy& policy, const std::string& name) {
  return std::any_of(policy.rules.begin(), policy.rules.end(),
                     [&](const TensorTypeRule& r) { return std::regex_search(name, r.re); });
}

DType storage_type_for(const std::string& name, const TypePolicy& policy) {
  if (is_vector(name)) return DType::F32;
  // The embedding is read one row per token, so its size costs no decode speed; F16
  // keeps a tied output head accurate (stories260K q8: mean KLD 0.00128 -> 0.00096).
  for (const TensorTypeRule& r : policy.rules)
    if (std::regex_search(name, r.re)) return r.type;
  if (name == "tok_embeddings" && dtype_is_quantized(policy.base)) return DType::F16;
  // A router's small error can pick another expert, which changes the whole FFN output;
  // it is n_experts rows (llama.cpp keeps it in f32 too).
  if (name.ends_with(".router")) return DType::F32;
  if (policy.mixed && preset_upgrades(name)) return upgraded_type(policy.base);
  return policy.base;
}

// A q2k row is whole super-blocks: 576 weights take 768's bytes, 3.5 bits/weight, q3's
// size with more error. llama.cpp's k-quants fall back likewise on such rows.
DType storage_type_for(const std::string& name, int64_t cols, const TypePolicy& policy) {
  const DType t = storage_type_for(name, policy);
  if (t != DType::Q2K || cols % kSuperBlock == 0) return t;
  for (const TensorTypeRule& r : policy.rules)
    if (std::regex_search(name, r.re)) return t;  // asked for by name: kept
  return DType::Q3;
}

}  // namespace qrun
