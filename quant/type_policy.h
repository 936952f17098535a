// Which storage type each tensor gets: one type for every big matrix (q8, q6, q5, q4n,
// q4, q3, q2k, f16, f32), or a mixed preset (q2m, q3m, q4m, q5m) that stores the tensors whose
// errors cost the model most with two more bits, as llama.cpp's _M types do.
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "qrun/dtype.h"
#include "qrun/model_layout.h"

namespace qrun {

// A user's override: tensors whose qrun name matches `pattern` (a regex searched in the
// name, e.g. "w2" or "layers\.[0-3]\.wv") are stored as `type`.
struct TensorTypeRule {
  std::string pattern;
  std::regex re;
  DType type;
};

struct TypePolicy {
  DType base = DType::Q4;  // the big matrices
  bool mixed = false;      // a preset: some tensors get upgrade(base)
  std::vector<TensorTypeRule> rules;  // first match wins, before the preset
};

// "PATTERN=TYPE" -> a rule; std::invalid_argument naming what is wrong. Patterns have at
// most kMaxPatternLength characters and no number of more than kMaxPatternDigits digits
// (what std::regex handles safely).
inline constexpr size_t kMaxPatternLength = 256, kMaxPatternDigits = 4;
TensorTypeRule parse_tensor_type_rule(const std::string& text);

// "q4m" -> {Q4N, mixed}; "q8" -> {Q8, plain}. False for anything else.
bool parse_type_policy(std::string_view name, TypePolicy* out);
std::string type_policy_name(const TypePolicy& p);

// Every plain type and preset parse_type_policy takes, as policies.
std::vector<TypePolicy> type_policies();

// The names parse_type_policy takes, with bits per weight ("q8 (8.5 bits/weight), ...").
std::string type_policy_choices();

// The type a preset gives its sensitive tensors: about two bits more (q4n above q2k,
// q8 above q5).
DType upgraded_type(DType base);

// True for the tensors a mixed preset upgrades (attention's value and output
// projections and the output head).
bool preset_upgrades(const std::string& qrun_name);

// Throws std::invalid_argument for a rule that matches none of a model's tensors but
// vectors, which keep F32 whatever the rules say: a typo, or "output" on a model whose
// head is the embedding, would otherwise do nothing without a word.
void check_rules_match(const TypePolicy& policy, const std::vector<TensorSpec>& tensors);
// Whether one of the policy's --tensor-type rules matches the tensor.
bool rule_names(const TypePolicy& policy, const std::string& name);

// The storage type of a tensor of the given role. Vectors (norms, biases) stay F32
// whatever the rules say.
DType storage_type_for(const std::string& qrun_name, const TypePolicy& policy);
// The same for a tensor whose rows are `cols` long: where the policy (not a user's rule)
// gives q2k to rows that are not whole super-blocks of 256, q3 (below).
DType storage_type_for(const std::string& qrun_name, int64_t cols, const TypePolicy& policy);

}  // namespace qrun
