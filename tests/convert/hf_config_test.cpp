// config.json of each supported family maps to the right hyper-parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <tuple>

#include "common/test_paths.h"
#include "convert/hf_config.h"
#include "qrun/error.h"
#include "qrun/model_layout.h"

namespace qrun {
namespace {

format::HParams parse(const std::string& json) {
  test::ScratchDir dir;
  test::write_text(dir / "config.json", json);
  return read_hf_config(dir.path());
}

// Reading `json` as config.json fails with `want` in a message that names the file.
void expect_refused(const std::string& json, const std::string& want) {
  try {
    parse(json);
    ADD_FAILURE() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

TEST(HfConfig, ShippedStoriesModel) {
  const auto hp = read_hf_config(test::stories_dir());
  EXPECT_EQ(hp.arch, static_cast<uint32_t>(format::Arch::Llama));
  EXPECT_EQ(hp.dim, 64u);
  EXPECT_EQ(hp.hidden_dim, 172u);
  EXPECT_EQ(hp.n_layers, 5u);
  EXPECT_EQ(hp.n_heads, 8u);
  EXPECT_EQ(hp.n_kv_heads, 4u);
  EXPECT_EQ(hp.head_dim, 8u);
  EXPECT_EQ(hp.vocab_size, 512u);
  EXPECT_EQ(hp.tied_embeddings, 1u);
  EXPECT_FLOAT_EQ(hp.norm_eps, 1e-5f);
}

TEST(HfConfig, Llama3RopeScaling) {
  const auto hp = parse(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 8192,
    "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072, "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": true,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})");
  EXPECT_EQ(hp.rope_scaling, static_cast<uint32_t>(format::RopeScaling::Llama3));
  EXPECT_FLOAT_EQ(hp.rope_factor, 32.0f);
  EXPECT_EQ(hp.rope_original_max_pos, 8192u);
  EXPECT_EQ(hp.head_dim, 64u);
  EXPECT_FLOAT_EQ(hp.rope_theta, 500000.0f);
}

TEST(HfConfig, Qwen2HasAttentionBiases) {
  const auto hp = parse(R"({"architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
    "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": true})");
  EXPECT_EQ(hp.arch, static_cast<uint32_t>(format::Arch::Qwen2));
  EXPECT_EQ(hp.attn_bias, 1u);
  EXPECT_EQ(hp.flags & format::kOutputBias, 0u);  // Qwen2's o_proj has none
}

// Llama's attention_bias puts biases on q, k, v and the output projection.
TEST(HfConfig, LlamaAttentionBiasIncludesTheOutputProjection) {
  const std::string llama = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
    "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 512, )";
  const auto hp = parse(llama + R"("attention_bias": true})");
  EXPECT_EQ(hp.attn_bias, 1u);
  EXPECT_EQ(hp.flags, uint32_t{format::kOutputBias});
  EXPECT_EQ(parse(llama + R"("attention_bias": false})").flags, 0u);
}

TEST(HfConfig, MistralLinearScalingAndWindow) {
  const auto hp = parse(R"({"architectures": ["MistralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
    "sliding_window": 4096, "rope_scaling": {"type": "linear", "factor": 2.0}})");
  EXPECT_EQ(hp.arch, static_cast<uint32_t>(format::Arch::Mistral));
  EXPECT_EQ(hp.sliding_window, 4096u);
  EXPECT_EQ(hp.rope_scaling, static_cast<uint32_t>(format::RopeScaling::Linear));
}

// Gemma 3 4B's config.json: a multimodal config whose text_config lists five fields and
// leaves the rest at Gemma3TextConfig's defaults.
TEST(HfConfig, Gemma3MultimodalTakesTextConfigOverDefaults) {
  const auto hp = parse(R"({"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
    "eos_token_id": [1, 106], "text_config": {"hidden_size": 2560, "intermediate_size": 10240,
    "model_type": "gemma3_text", "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
    "sliding_window": 1024}, "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"}})");
  EXPECT_EQ(hp.arch, static_cast<uint32_t>(format::Arch::Gemma3));
  EXPECT_EQ(hp.dim, 2560u);
  EXPECT_EQ(hp.n_layers, 34u);
  EXPECT_EQ(hp.n_heads, 8u);
  EXPECT_EQ(hp.n_kv_heads, 4u);
  EXPECT_EQ(hp.head_dim, 256u);
  EXPECT_EQ(hp.vocab_size, 262208u);
  EXPECT_EQ(hp.tied_embeddings, 1u);
  EXPECT_FLOAT_EQ(hp.rope_theta, 1e6f);
  EXPECT_FLOAT_EQ(hp.rope_local_theta, 1e4f);
  EXPECT_EQ(hp.rope_scaling, static_cast<uint32_t>(format::RopeScaling::Linear));
  EXPECT_FLOAT_EQ(hp.rope_factor, 8.0f);
  EXPECT_FLOAT_EQ(hp.query_scale, 1.0f / 16);
  EXPECT_EQ(hp.sliding_window, 1024u);
  const uint32_t flags = format::kQkNorm | format::kSandwichNorms | format::kEmbedScale | format::kGeluTanh;
  EXPECT_EQ(hp.flags, flags);
  EXPECT_EQ(hp.attn_softcap, 0.0f);
  std::string global;
  for (int l = 0; l < 12; ++l) global += layer_is_sliding(hp, l) ? '.' : 'G';
  EXPECT_EQ(global, ".....G.....G");
}

// Newer transformers write layer_types instead of sliding_window_pattern.
TEST(HfConfig, Gemma3LayerTypes) {
  std::string types;
  for (int l = 0; l < 26; ++l) types += std::string(l ? ", " : "") + ((l + 1) % 6 ? "\"sliding_attention\"" : "\"full_attention\"");
  const auto hp = parse(R"({"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 1152,
    "intermediate_size": 6912, "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1,
    "vocab_size": 262144, "sliding_window": 512, "rope_scaling": null, "layer_types": [)" + types + "]}");
  EXPECT_EQ(hp.sliding_period, 6u);
  EXPECT_EQ(hp.n_kv_heads, 1u);
  EXPECT_EQ(hp.rope_scaling, 0u);
  EXPECT_TRUE(layer_is_sliding(hp, 24));
  EXPECT_FALSE(layer_is_sliding(hp, 23));
}

// SmolLM3: no RoPE on every fourth layer, from no_rope_layers or no_rope_layer_interval.
TEST(HfConfig, SmolLM3NoPeLayers) {
  const std::string head = R"({"architectures": ["SmolLM3ForCausalLM"], "hidden_size": 2048, "intermediate_size": 11008,
    "num_hidden_layers": 8, "num_attention_heads": 16, "num_key_value_heads": 4, "vocab_size": 128256, )";
  const auto listed = parse(head + R"("no_rope_layers": [1, 1, 1, 0, 1, 1, 1, 0]})");
  EXPECT_EQ(listed.arch, static_cast<uint32_t>(format::Arch::SmolLM3));
  EXPECT_EQ(listed.nope_period, 4u);
  EXPECT_EQ(parse(head + R"("no_rope_layer_interval": 2})").nope_period, 2u);
  EXPECT_EQ(parse(head + "\"use_sliding_window\": false}").nope_period, 4u);
  std::string rotates;
  for (int l = 0; l < 8; ++l) rotates += layer_uses_rope(listed, l) ? 'R' : '-';
  EXPECT_EQ(rotates, "RRR-RRR-");
  EXPECT_THROW(parse(head + R"("no_rope_layers": [1, 0, 1, 1, 1, 0, 1, 1]})"), Error);
  EXPECT_THROW(parse(head + R"("no_rope_layers": [1, 1, 2, 0, 1, 1, 1, 0]})"), Error);
}

// Mixture of experts: Qwen3-30B-A3B's and Mixtral 8x7B's config.json fields.
TEST(HfConfig, MixtureOfExperts) {
  const std::string qwen = R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048, "intermediate_size": 6144,
    "num_hidden_layers": 48, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 151936,
    "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768, "decoder_sparse_step": 1, )";
  const auto q = parse(qwen + R"("norm_topk_prob": true, "mlp_only_layers": []})");
  EXPECT_EQ(q.arch, static_cast<uint32_t>(format::Arch::Qwen3Moe));
  EXPECT_EQ(q.n_experts, 128u);
  EXPECT_EQ(q.n_experts_used, 8u);
  EXPECT_EQ(q.hidden_dim, 768u);  // the experts' width; intermediate_size is for dense layers
  EXPECT_TRUE(q.flags & format::kNormTopK);
  EXPECT_TRUE(q.flags & format::kQkNorm);
  EXPECT_FALSE(parse(qwen + R"("norm_topk_prob": false})").flags & format::kNormTopK);
  const auto m = parse(R"({"architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000,
    "num_local_experts": 8, "num_experts_per_tok": 2, "sliding_window": null, "rope_theta": 1e6})");
  EXPECT_EQ(m.arch, static_cast<uint32_t>(format::Arch::Mixtral));
  EXPECT_EQ(m.n_experts, 8u);
  EXPECT_EQ(m.n_experts_used, 2u);
  EXPECT_EQ(m.hidden_dim, 14336u);
  EXPECT_EQ(m.flags, uint32_t{format::kNormTopK});
  EXPECT_EQ(m.sliding_window, 0u);

  const std::pair<std::string, std::string> refused[] = {
      {qwen + R"("decoder_sparse_step": 2})", "decoder_sparse_step is 2"},
      {qwen + R"("mlp_only_layers": [0, 47]})", "mlp_only_layers is [0,47]"},
      {qwen + R"("num_experts_per_tok": 129})", "num_experts_per_tok is 129, not 1 to 128 experts"},
      {R"({"architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 10, "num_experts_per_tok": 2, "moe_intermediate_size": 32})",
       "missing field \"num_experts\""},
      {R"({"architectures": ["MixtralForCausalLM"], "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 10, "num_local_experts": 0, "num_experts_per_tok": 2})",
       "num_local_experts is 0"},
  };
  for (const auto& [json, want] : refused) expect_refused(json, want);
}

// Granite 3.3 2B's and Granite 3.1 1B-A400M's config.json fields: four multipliers, the
// attention's replacing 1/sqrt(head_dim); GraniteMoe's experts as Mixtral names them.
TEST(HfConfig, GraniteMultipliersAndExperts) {
  const std::string granite = R"({"architectures": ["GraniteForCausalLM"], "model_type": "granite", "hidden_size": 2048,
    "intermediate_size": 8192, "num_hidden_layers": 40, "num_attention_heads": 32, "num_key_value_heads": 8,
    "vocab_size": 49159, "max_position_embeddings": 131072, "rope_theta": 10000000.0, "tie_word_embeddings": true,
    "attention_bias": false, "mlp_bias": false, "hidden_act": "silu", "embedding_multiplier": 12.0, )";
  const auto g = parse(granite + R"("residual_multiplier": 0.22, "attention_multiplier": 0.015625, "logits_scaling": 8.0})");
  EXPECT_EQ(g.arch, static_cast<uint32_t>(format::Arch::Granite));
  EXPECT_EQ(g.head_dim, 64u);
  EXPECT_FLOAT_EQ(g.embedding_scale, 12.0f);
  EXPECT_FLOAT_EQ(g.residual_scale, 0.22f);
  EXPECT_FLOAT_EQ(g.query_scale, 0.015625f);
  EXPECT_FLOAT_EQ(g.logit_scale, 8.0f);
  EXPECT_EQ(g.n_experts, 0u);
  const auto defaults = parse(granite + R"("residual_multiplier": 0.22})");  // transformers' defaults: 1
  EXPECT_FLOAT_EQ(defaults.query_scale, 1.0f);
  EXPECT_FLOAT_EQ(defaults.logit_scale, 1.0f);
  expect_refused(granite + R"("residual_multiplier": 0})", "\"residual_multiplier\" must be positive");
  expect_refused(granite + R"("logits_scaling": -8.0})", "\"logits_scaling\" must be positive");
  const auto m = parse(R"({"architectures": ["GraniteMoeForCausalLM"], "model_type": "granitemoe", "hidden_size": 1024,
    "intermediate_size": 512, "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 8,
    "vocab_size": 49155, "num_local_experts": 32, "num_experts_per_tok": 8, "embedding_multiplier": 12.0,
    "residual_multiplier": 0.22, "attention_multiplier": 0.015625, "logits_scaling": 6.0,
    "position_embedding_type": "rope", "tie_word_embeddings": true})");
  EXPECT_EQ(m.arch, static_cast<uint32_t>(format::Arch::GraniteMoe));
  EXPECT_EQ(m.n_experts, 32u);
  EXPECT_EQ(m.n_experts_used, 8u);
  EXPECT_EQ(m.hidden_dim, 512u);
  EXPECT_EQ(m.flags, uint32_t{format::kNormTopK});  // softmax over the k largest logits
  EXPECT_FLOAT_EQ(m.logit_scale, 6.0f);
  expect_refused(R"({"architectures": ["GraniteMoeForCausalLM"], "hidden_size": 64, "intermediate_size": 32,
    "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "num_local_experts": 4, "num_experts_per_tok": 2,
    "position_embedding_type": "nope"})", "position_embedding_type \"nope\" is not supported");
}

// gpt-oss-20b's config.json: 32 experts of 2880 (4 per token), biases on the attention
// (output included) and the experts, sinks, a window of 128 on even layers, YaRN x32 with
// fractional ramp bounds, MXFP4 experts.
TEST(HfConfig, GptOss) {
  std::string layer_types;
  for (int l = 0; l < 24; ++l) layer_types += std::string(l ? ", " : "") + (l % 2 ? "\"full_attention\"" : "\"sliding_attention\"");
  const std::string head = R"({"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": true,
    "head_dim": 64, "hidden_act": "silu", "hidden_size": 2880, "initial_context_length": 4096, "intermediate_size": 2880,
    "max_position_embeddings": 131072, "num_attention_heads": 64, "num_experts_per_tok": 4, "num_hidden_layers": 24,
    "num_key_value_heads": 8, "num_local_experts": 32, "rms_norm_eps": 1e-05, "rope_theta": 150000,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
                     "rope_type": "yarn", "truncate": false},
    "sliding_window": 128, "swiglu_limit": 7.0, "tie_word_embeddings": false, "vocab_size": 201088, )";
  const auto hp = parse(head + R"("quantization_config": {"quant_method": "mxfp4"}, "layer_types": [)" + layer_types + "]}");
  EXPECT_EQ(hp.arch, static_cast<uint32_t>(format::Arch::GptOss));
  EXPECT_EQ(hp.n_experts, 32u);
  EXPECT_EQ(hp.n_experts_used, 4u);
  EXPECT_EQ(hp.hidden_dim, 2880u);
  EXPECT_EQ(hp.attn_bias, 1u);
  EXPECT_EQ(hp.flags, uint32_t{format::kNormTopK | format::kAttnSinks | format::kExpertBias | format::kOutputBias |
                               format::kYarnUntruncated});
  EXPECT_FLOAT_EQ(hp.swiglu_limit, 7.0f);
  EXPECT_EQ(hp.sliding_window, 128u);
  EXPECT_TRUE(layer_is_sliding(hp, 0));
  EXPECT_FALSE(layer_is_sliding(hp, 1));
  EXPECT_TRUE(layer_is_sliding(hp, 22));
  EXPECT_EQ(hp.rope_scaling, static_cast<uint32_t>(format::RopeScaling::Yarn));
  EXPECT_NEAR(hp.rope_attn_factor, 0.1 * std::log(32.0) + 1.0, 1e-6);
  expect_refused(head + R"("quantization_config": {"quant_method": "fp8"}})", "quant_method \"fp8\" is not supported");
  expect_refused(head + R"("layer_types": ["full_attention"]})", "layer_types must list one value per layer");
}

// Qwen1.5-MoE-A2.7B's config.json: Qwen2's q/k/v biases, 60 experts of 1408 (4 per token,
// not renormalized) and a shared expert of 5632.
TEST(HfConfig, Qwen2MoeSharedExpert) {
  const std::string qwen = R"({"architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "hidden_size": 2048,
    "intermediate_size": 5632, "num_hidden_layers": 24, "num_attention_heads": 16, "num_key_value_heads": 16,
    "vocab_size": 151936, "num_experts": 60, "num_experts_per_tok": 4, "moe_intermediate_size": 1408,
    "decoder_sparse_step": 1, "norm_topk_prob": false, "mlp_only_layers": [], "use_sliding_window": false, )";
  const auto q = parse(qwen + R"("shared_expert_intermediate_size": 5632})");
  EXPECT_EQ(q.arch, static_cast<uint32_t>(format::Arch::Qwen2Moe));
  EXPECT_EQ(q.n_experts, 60u);
  EXPECT_EQ(q.n_experts_used, 4u);
  EXPECT_EQ(q.hidden_dim, 1408u);
  EXPECT_EQ(q.shared_hidden_dim, 5632u);
  EXPECT_EQ(q.attn_bias, 1u);
  EXPECT_EQ(q.flags, 0u);
  EXPECT_EQ(q.sliding_window, 0u);
  expect_refused(qwen + R"("shared_expert_intermediate_size": 0})", "shared_expert_intermediate_size is 0");
  expect_refused(qwen + R"("foo": 1})", "missing field \"shared_expert_intermediate_size\"");
}

// Embedding models made for sentence-transformers say how they pool in a module folder.
TEST(HfConfig, SentenceTransformersPooling) {
  const std::string config = R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 10})";
  auto pooling = [&](const std::string& modules, const std::string& folder, const std::string& pooling_config) {
    test::ScratchDir dir;
    test::write_text(dir / "config.json", config);
    if (!modules.empty()) test::write_text(dir / "modules.json", modules);
    if (!folder.empty()) {
      std::filesystem::create_directories(dir / folder);
      test::write_text(dir / folder / "config.json", pooling_config);
    }
    return read_hf_config(dir.path()).pooling;
  };
  EXPECT_EQ(pooling("", "", ""), 0u);  // a language model: unspecified
  EXPECT_EQ(pooling("", "1_Pooling", R"({"word_embedding_dimension": 64, "pooling_mode_lasttoken": true,
      "pooling_mode_mean_tokens": false, "pooling_mode_cls_token": false})"), 3u);
  EXPECT_EQ(pooling("", "1_Pooling", R"({"pooling_mode_mean_tokens": true})"), 1u);
  EXPECT_EQ(pooling("", "1_Pooling", R"({"pooling_mode_cls_token": true})"), 2u);
  EXPECT_EQ(pooling("", "1_Pooling", R"({"pooling_mode_max_tokens": true})"), 0u);  // not one qrun pools by
  EXPECT_EQ(pooling("", "1_Pooling", R"({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true})"), 0u);
  // Found by fuzz_hf_config: a module whose type is not a string escaped as a JSON exception.
  EXPECT_EQ(pooling(R"([{"type": 2, "path": "pool"}, 7, {"type": "sentence_transformers.models.Pooling", "path": 3}])",
                    "pool", R"({"pooling_mode_lasttoken": true})"), 0u);
  EXPECT_EQ(pooling(R"([{"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
      {"idx": 1, "path": "pool", "type": "sentence_transformers.models.Pooling"}])", "pool",
                    R"({"pooling_mode_lasttoken": true})"), 3u);
  for (const auto& [modules, folder, body, want] :
       {std::tuple<std::string, std::string, std::string, std::string>{"", "1_Pooling", "{", "1_Pooling/config.json"},
        {"", "1_Pooling", R"({"pooling_mode_lasttoken": 1})", "\"pooling_mode_lasttoken\" is not a boolean"},
        {"{}", "", "", "modules.json"},
        {R"([{"type": "sentence_transformers.models.Pooling", "path": "/etc"}])", "", "", "leaves the model folder"},
        {R"([{"type": "sentence_transformers.models.Pooling", "path": "a/../../x"}])", "", "", "leaves the model folder"}}) {
    try {
      pooling(modules, folder, body);
      ADD_FAILURE() << "accepted: " << body;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

TEST(HfConfig, RefusesWithTheProblemNamed) {
  const std::pair<std::string, std::string> cases[] = {
      {"[1, 2]", "not a JSON object"},
      {R"({"architectures": ["LlamaForCausalLM"], "hidden_size": "big"})", "\"hidden_size\" is \"big\", not an integer in [0, 4294967295]"},
      {R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 3, "num_key_value_heads": 2, "vocab_size": 10})", "n_kv_heads"},
      {R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 10, "rope_scaling": {"type": "dynamic", "factor": 4}})", "rope_scaling type 'dynamic'"},
      {R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
           "num_attention_heads": 4, "vocab_size": 10, "hidden_act": "gelu"})", "hidden_act"},
      {R"({"architectures": ["Gemma3ForConditionalGeneration"], "text_config": [1]})", "text_config is not a JSON object"},
      {R"({"architectures": ["Gemma3ForCausalLM"], "num_hidden_layers": 3,
           "layer_types": ["sliding_attention", "full_attention", "full_attention"]})", "\"full_attention\" must be every n-th layer (n-1, 2n-1, ...), as qrun stores a period; here it is layers 1, 2"},
      {R"({"architectures": ["Gemma3ForCausalLM"], "num_hidden_layers": 3, "layer_types": ["full_attention"]})",
       "one value per layer (3)"},
      {R"({"architectures": ["Gemma3ForCausalLM"], "num_hidden_layers": 1, "layer_types": ["chunked_attention"]})",
       "layer_types holds \"chunked_attention\" (allowed"},
      {R"({"architectures": ["Gemma3ForCausalLM"], "sliding_window_pattern": 0})", "sliding_window_pattern is 0"},
      {R"({"architectures": ["LlavaForConditionalGeneration"]})", "Gemma3ForConditionalGeneration (its text model)"},
  };
  // issue 15: values that were cast to uint32 / float unchecked (undefined behaviour).
  const std::string llama = R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, )";
  const std::pair<std::string, std::string> ranges[] = {
      {llama + R"("rope_scaling": {"rope_type": "llama3", "factor": 8, "original_max_position_embeddings": -1}})",
       "field \"original_max_position_embeddings\" is -1, not an integer in [1, 4294967295]"},
      {llama + R"("rope_scaling": {"rope_type": "llama3", "factor": 8, "original_max_position_embeddings": 1e20}})",
       "field \"original_max_position_embeddings\" is 1e+20, not an integer in [1, 4294967295]"},
      {llama + R"("rope_scaling": {"rope_type": "llama3", "factor": 8, "original_max_position_embeddings": 8192.5}})",
       "\"original_max_position_embeddings\" is 8192.5"},
      {llama + R"("rope_scaling": {"rope_type": "llama3", "factor": 8, "original_max_position_embeddings": "8k"}})",
       "\"original_max_position_embeddings\" is \"8k\""},
      {llama + R"("rope_scaling": {"rope_type": "linear", "factor": 1e300}})", "field \"factor\" is 1e+300, outside the range of a float"},
      {llama + R"("rope_theta": -1e39})", "field \"rope_theta\" is -1e+39"},
  };
  for (const auto& [json, want] : ranges) expect_refused(json, want);
  EXPECT_EQ(parse(llama + R"("rope_scaling": {"rope_type": "llama3", "factor": 8, "original_max_position_embeddings": 8192.0}})")
                .rope_original_max_pos,
            8192u);
  for (const auto& [json, want] : cases) expect_refused(json, want);
}

}  // namespace
}  // namespace qrun
