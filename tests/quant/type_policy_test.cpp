// qconvert --type and --tensor-type: names, presets and rules (quant/type_policy.h).
#include <gtest/gtest.h>

#include <stdexcept>

#include "quant/type_policy.h"
#include "qrun/model_layout.h"

namespace qrun {
namespace {

TEST(TypePolicy, ParsesPlainTypesAndPresets) {
  TypePolicy p;
  ASSERT_TRUE(parse_type_policy("q4m", &p));
  EXPECT_EQ(p.base, DType::Q4N);
  EXPECT_TRUE(p.mixed);
  EXPECT_EQ(type_policy_name(p), "q4m");
  ASSERT_TRUE(parse_type_policy("q3", &p));
  EXPECT_EQ(p.base, DType::Q3);
  EXPECT_FALSE(p.mixed);
  EXPECT_EQ(type_policy_name(p), "q3");
  EXPECT_FALSE(parse_type_policy("bf16", &p));  // not a converter type
  EXPECT_FALSE(parse_type_policy("q4_k_m", &p));
  EXPECT_FALSE(parse_type_policy("", &p));
  // Every name the help lists parses.
  const std::string choices = type_policy_choices();
  for (const char* name : {"q8", "q6", "q5", "q4n", "q4", "q3", "q2k", "f16", "f32", "q3m", "q4m", "q5m"}) {
    EXPECT_NE(choices.find(std::string(name) + " ("), std::string::npos) << name << " in " << choices;
    EXPECT_TRUE(parse_type_policy(name, &p)) << name;
  }
  EXPECT_NE(choices.find("q6 (6.5)"), std::string::npos) << choices;
}

TEST(TypePolicy, PresetUpgradesAttentionValueAndOutputProjectionsAndTheHead) {
  const TypePolicy q4m{DType::Q4N, true, {}};
  const int n = 22;  // TinyLlama's layers
  EXPECT_EQ(storage_type_for("output", q4m), DType::Q6);
  EXPECT_EQ(storage_type_for("tok_embeddings", q4m), DType::F16);
  EXPECT_EQ(storage_type_for("layers.0.attention_norm", q4m), DType::F32);
  EXPECT_EQ(storage_type_for("layers.5.bq", q4m), DType::F32);
  for (int l = 0; l < n; ++l) {
    for (const char* role : {"wq", "wk", "w1", "w2", "w3"})
      EXPECT_EQ(storage_type_for(layer_tensor_name(l, role), q4m), DType::Q4N) << l << role;
    for (const char* role : {"wv", "wo"})
      EXPECT_EQ(storage_type_for(layer_tensor_name(l, role), q4m), DType::Q6) << l << role;
  }
  // Plain types give every matrix the same type.
  const TypePolicy q5{DType::Q5, false, {}};
  EXPECT_EQ(storage_type_for("output", q5), DType::Q5);
  EXPECT_EQ(storage_type_for("layers.3.wv", q5), DType::Q5);
  EXPECT_EQ(upgraded_type(DType::Q3), DType::Q5);
  EXPECT_EQ(upgraded_type(DType::Q5), DType::Q8);
  const TypePolicy q3m{DType::Q3, true, {}};
  EXPECT_EQ(storage_type_for("layers.3.wo", q3m), DType::Q5);
  EXPECT_EQ(storage_type_for("layers.3.w2", q3m), DType::Q3);
}

TEST(TypePolicy, RulesComeFirstButNeverQuantizeVectors) {
  TypePolicy p{DType::Q4N, true, {}};
  p.rules.push_back(parse_tensor_type_rule("layers\\.1\\.w[13]=q8"));
  p.rules.push_back(parse_tensor_type_rule("output=q3"));
  p.rules.push_back(parse_tensor_type_rule("norm=q4"));
  EXPECT_EQ(storage_type_for("layers.1.w1", p), DType::Q8);
  EXPECT_EQ(storage_type_for("layers.1.w3", p), DType::Q8);
  EXPECT_EQ(storage_type_for("layers.11.w1", p), DType::Q4N);
  EXPECT_EQ(storage_type_for("output", p), DType::Q3);  // before the preset's q6
  EXPECT_EQ(storage_type_for("layers.1.ffn_norm", p), DType::F32);
  EXPECT_EQ(storage_type_for("norm", p), DType::F32);
}

// A rule must change some matrix of the model: one that matches nothing, or only norms,
// or the head of a model that ties it to the embedding, is an error, not a no-op.
TEST(TypePolicy, RulesThatMatchNoMatrixAreRefused) {
  const std::vector<TensorSpec> tied = {{"tok_embeddings", 64, 512, 2, -1, TensorRole::Embedding},
                                        {"layers.0.attention_norm", 64, 1, 1, 0, TensorRole::Norm},
                                        {"layers.0.wq", 64, 64, 2, 0, TensorRole::Projection},
                                        {"norm", 64, 1, 1, -1, TensorRole::Norm}};
  for (const char* rule : {"layers\\.0\\.wq=q8", "wq=q6", "tok_embeddings=q8"}) {
    TypePolicy p{DType::Q4, false, {parse_tensor_type_rule(rule)}};
    EXPECT_NO_THROW(check_rules_match(p, tied)) << rule;
  }
  for (const char* rule : {"nomatch=q8", "attention_norm=q4", "output=q8", "layers\\.1\\.wq=q8"}) {
    TypePolicy p{DType::Q4, false, {parse_tensor_type_rule("wq=q6"), parse_tensor_type_rule(rule)}};
    try {
      check_rules_match(p, tied);
      ADD_FAILURE() << rule << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(rule), std::string::npos) << e.what();
    }
  }
}

TEST(TypePolicy, BadRulesNameWhatIsWrong) {
  auto message = [](const std::string& rule) {
    try {
      parse_tensor_type_rule(rule);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(message("w2").find("PATTERN=TYPE"), std::string::npos);
  EXPECT_NE(message("=q8").find("PATTERN=TYPE"), std::string::npos);
  EXPECT_NE(message("w2=q7").find("unknown type 'q7'"), std::string::npos);
  EXPECT_NE(message("w2=bf16").find("unknown type 'bf16'"), std::string::npos);
  EXPECT_NE(message("w[2=q8").find("bad pattern"), std::string::npos);
  // Deep nesting would overflow std::regex's recursive compiler: long patterns are refused.
  const std::string deep = std::string(kMaxPatternLength / 2 + 1, '(') + std::string(kMaxPatternLength / 2 + 1, ')');
  EXPECT_NE(message(deep + "=q8").find("longer than 256 characters"), std::string::npos);
  EXPECT_EQ(message(std::string(kMaxPatternLength, 'w') + "=q8"), "(accepted)");
  // std::regex reads repeat counts and back-references into a long without a check.
  EXPECT_NE(message("w\\77777777777777777777=q8").find("more than 4 digits"), std::string::npos);
  EXPECT_NE(message("w{12345}=q8").find("more than 4 digits"), std::string::npos);
  EXPECT_EQ(message("layers\\.(1[0-9]|2[0-1])\\.w2=q6"), "(accepted)");
}

// q2k rows are whole super-blocks of 256; on other rows the policy stores q3 (a 576-wide
// q2k row would take 3.5 bits/weight), unless a rule names the tensor.
TEST(TypePolicy, Q2kFallsBackToQ3OnRowsThatAreNotWholeSuperBlocks) {
  TypePolicy q2k, q2m;
  ASSERT_TRUE(parse_type_policy("q2k", &q2k));
  ASSERT_TRUE(parse_type_policy("q2m", &q2m));
  EXPECT_EQ(storage_type_for("layers.0.w1", 2048, q2k), DType::Q2K);
  EXPECT_EQ(storage_type_for("layers.0.w2", 5632, q2k), DType::Q2K);  // 22 super-blocks
  EXPECT_EQ(storage_type_for("layers.0.w2", 5632 + 32, q2k), DType::Q3);
  EXPECT_EQ(storage_type_for("layers.0.w1", 576, q2k), DType::Q3);
  EXPECT_EQ(storage_type_for("layers.0.wv", 2048, q2m), DType::Q4N);
  EXPECT_EQ(storage_type_for("layers.0.wq", 2048, q2m), DType::Q2K);
  EXPECT_EQ(storage_type_for("layers.0.wq", 576, q2m), DType::Q3);
  q2k.rules.push_back(parse_tensor_type_rule("w1=q2k"));
  EXPECT_EQ(storage_type_for("layers.0.w1", 576, q2k), DType::Q2K);  // asked for by name
  EXPECT_EQ(storage_type_for("layers.0.w3", 576, q2k), DType::Q3);
}

}  // namespace
}  // namespace qrun
