// GGUF import of Qwen3, Qwen3-MoE, Qwen2-MoE, Mixtral, Gemma 2 and 3, Phi-3, Granite, GraniteMoe, gpt-oss and Llama with YaRN (issue 13): a GGUF
// written the way llama.cpp's convert_hf_to_gguf.py writes these architectures (GGUF names
// from the table, Gemma's norms stored as 1 + w, Phi-3's qkv and gate_up fused and its
// LongRoPE factors as tensors, GraniteMoe's fused experts split into gate and up, Q/K
// rows permuted for the llama-derived ones, Granite's multipliers as keys, gpt-oss's
// interleaved gate/up experts and their biases split apart, its MXFP4 experts as ggml's
// MXFP4 blocks, its FFN norm named post_attention_norm) from the synthetic
// reference checkpoints imports to the same tensors, bit for bit, as the safetensors
// conversion, with the same hyper-parameters.
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "common/gguf_stories.h"
#include "common/hf_reference.h"
#include "convert/converter.h"
#include "convert/gguf_convert.h"
#include "convert/hf_config.h"
#include "convert/safetensors.h"
#include "qrun/model_file.h"
#include "qrun/model_layout.h"
#include "src/format/arch_table.h"

namespace qrun {
namespace {

std::vector<uint8_t> gguf_from_checkpoint(const std::string& dir) {
  const format::HParams hp = read_hf_config(dir);
  // phi4-mini is a phi3 GGUF, Mixtral a llama one with experts.
  const std::string arch = hp.arch == static_cast<uint32_t>(format::Arch::Mixtral) ? "llama" : arch_info(hp.arch).name;
  const SafetensorsCheckpoint ckpt(dir);
  test::GgufWriter g;
  g.str("general.architecture", arch);
  g.u32("general.alignment", 32);
  const std::string p = arch + ".";
  g.u32(p + "context_length", hp.max_seq_len);
  g.u32(p + "embedding_length", hp.dim);
  g.u32(p + "feed_forward_length", hp.hidden_dim);
  g.u32(p + "block_count", hp.n_layers);
  g.u32(p + "attention.head_count", hp.n_heads);
  g.u32(p + "attention.head_count_kv", hp.n_kv_heads);
  g.u32(p + "attention.key_length", hp.head_dim);
  g.u32(p + "attention.value_length", hp.head_dim);
  g.f32(p + "rope.freq_base", hp.rope_theta);
  g.f32(p + "attention.layer_norm_rms_epsilon", hp.norm_eps);
  if (hp.rope_scaling == static_cast<uint32_t>(format::RopeScaling::Yarn)) {
    g.str(p + "rope.scaling.type", "yarn");
    g.f32(p + "rope.scaling.factor", hp.rope_factor);
    g.u32(p + "rope.scaling.original_context_length", hp.rope_original_max_pos);
    g.f32(p + "rope.scaling.yarn_beta_fast", hp.rope_beta_fast);
    g.f32(p + "rope.scaling.yarn_beta_slow", hp.rope_beta_slow);
  }
  if (arch == "phi3") {
    g.u32(p + "rope.dimension_count", hp.rotary_dim ? hp.rotary_dim : hp.head_dim);
    g.u32(p + "attention.sliding_window", hp.sliding_window);
    g.u32(p + "rope.scaling.original_context_length", hp.rope_original_max_pos);
    g.f32(p + "rope.scaling.attn_factor", hp.rope_attn_factor);
  }
  if (arch == "gemma3") {
    g.u32(p + "attention.sliding_window", hp.sliding_window);
    g.str(p + "rope.scaling.type", "linear");
    g.f32(p + "rope.scaling.factor", hp.rope_factor);
  }
  if (arch == "gpt-oss") g.u32(p + "attention.sliding_window", hp.sliding_window);
  if (arch == "gemma2") {
    g.f32(p + "attn_logit_softcapping", hp.attn_softcap);
    g.f32(p + "final_logit_softcapping", hp.final_softcap);
    g.u32(p + "attention.sliding_window", hp.sliding_window);
  }
  if (arch == "granite" || arch == "granitemoe") {
    g.f32(p + "embedding_scale", hp.embedding_scale);
    g.f32(p + "residual_scale", hp.residual_scale);
    g.f32(p + "logit_scale", hp.logit_scale);
    g.f32(p + "attention.scale", hp.query_scale);
  }
  if (arch == "qwen3") g.u32(p + "pooling_type", 3);  // as a Qwen3-Embedding GGUF says: last
  if (hp.n_experts) {
    g.u32(p + "expert_count", hp.n_experts);
    g.u32(p + "expert_used_count", hp.n_experts_used);
    if (arch == "qwen3moe" || arch == "qwen2moe" || arch == "gpt-oss") g.u32(p + "expert_feed_forward_length", hp.hidden_dim);
    if (arch == "qwen2moe") g.u32(p + "expert_shared_feed_forward_length", hp.shared_hidden_dim);
  }
  test::add_stories_tokenizer(g);
  const HfConfig config = read_hf_config_full(dir);
  std::set<std::string> written;
  for (const TensorSpec& spec : expected_tensors(hp)) {
    int layer = -1;
    const TensorRecipe& r = find_recipe(spec.name, hp.arch, &layer);
    if (spec.name.ends_with(".experts_gate_up_bias")) {  // gpt-oss's, interleaved: llama.cpp writes them apart
      const SafeTensor* t = ckpt.find(source_tensor_name(spec.name, hp.arch, false));
      std::vector<float> both(static_cast<size_t>(t->numel())), gate, up;
      t->read_f32(0, t->numel(), both.data());
      for (size_t i = 0; i < both.size(); ++i) (i % 2 ? up : gate).push_back(both[i]);
      const std::string blk = "blk." + std::to_string(layer) + ".";
      g.tensor(blk + "ffn_gate_exps.bias", {hp.hidden_dim, hp.n_experts}, test::kGgmlF32, test::encode_rows(gate, hp.hidden_dim, test::kGgmlF32));
      g.tensor(blk + "ffn_up_exps.bias", {hp.hidden_dim, hp.n_experts}, test::kGgmlF32, test::encode_rows(up, hp.hidden_dim, test::kGgmlF32));
      continue;
    }
    const std::string gguf_name = source_tensor_name(spec.name, hp.arch, true);
    if (!written.insert(gguf_name).second) continue;  // a fused tensor, written whole once
    std::vector<float> w;
    bool mxfp4 = false;
    if (r.need == Need::LongRope) {  // llama.cpp writes LongRoPE's factors as tensors
      w = spec.name == "rope_factors_long" ? config.rope_long_factors : config.rope_short_factors;
    } else {
      // Experts: one 3-D tensor of every expert's matrix, as llama.cpp writes them (from
      // one checkpoint tensor per expert, or GraniteMoe's stacked one, gate or up rows).
      const std::string hf_name = source_tensor_name(spec.name, hp.arch, false);
      const bool stacked = is_experts(r.part) && hf_name.find('*') == std::string::npos;
      const int experts = is_experts(r.part) && !stacked ? static_cast<int>(hp.n_experts) : 1;
      for (int e = 0; e < experts; ++e) {
        const SafeTensor* t = ckpt.find(expert_source_name(hf_name, e));
        mxfp4 = t->dtype == SafeDType::MXFP4;
        w.resize(w.size() + static_cast<size_t>(t->numel()));
        t->read_f32(0, t->numel(), w.data() + w.size() - static_cast<size_t>(t->numel()));
      }
      if (stacked) {
        const int64_t per = spec.rows / hp.n_experts, src_rows = source_rows(r, hp), first = part_row_offset(r.part, hp),
                      step = part_row_step(r.part);
        std::vector<float> rows;
        for (int64_t e = 0; e < hp.n_experts; ++e)
          for (int64_t i = 0; i < per; ++i) {
            const auto at = w.begin() + (e * src_rows + first + i * step) * spec.cols;
            rows.insert(rows.end(), at, at + spec.cols);
          }
        w = std::move(rows);
      }
    }
    if (r.plus_one)
      for (float& v : w) v += 1.0f;  // llama.cpp's Gemma conversion adds the 1 of (1 + w)
    // llama-arch files have Q and K rows in ggml's adjacent-pair RoPE order.
    const bool permuted = arch == "llama" || arch == "granite" || arch == "granitemoe";
    if (permuted && (spec.name.ends_with(".wq") || spec.name.ends_with(".wk")))
      w = test::ggml_permute_rows(w, spec.rows, spec.cols, hp.head_dim);
    std::vector<int64_t> ne = {spec.cols};
    if (spec.n_dims == 2) ne.push_back(is_experts(r.part) ? spec.rows / hp.n_experts : source_rows(r, hp));
    if (is_experts(r.part)) ne.push_back(hp.n_experts);
    const uint32_t type = mxfp4 ? test::kGgmlMxfp4 : test::kGgmlF32;  // gpt-oss's experts, as llama.cpp keeps them
    g.tensor(gguf_name, ne, type, test::encode_rows(w, spec.cols, type));
  }
  return g.bytes();
}

// The same tensors: floats of equal value (MXFP4's negative zero is ggml's positive one),
// blocks byte for byte.
void expect_same_tensors(const ModelFile& a, const ModelFile& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    const auto& ta = a.tensors()[i];
    const auto& tb = b.tensors()[i];
    ASSERT_EQ(ta.name, tb.name);
    ASSERT_EQ(ta.dtype, tb.dtype) << ta.name;
    ASSERT_EQ(ta.size, tb.size) << ta.name;
    if (ta.dtype != DType::F32) {
      EXPECT_EQ(std::memcmp(ta.data, tb.data, ta.size), 0) << ta.name;
      continue;
    }
    const float* fa = reinterpret_cast<const float*>(ta.data);
    const float* fb = reinterpret_cast<const float*>(tb.data);
    size_t differ = 0;
    for (size_t k = 0; k < ta.size / 4; ++k) differ += fa[k] != fb[k];
    EXPECT_EQ(differ, 0u) << ta.name;
  }
}

// The checkpoint in `dir` written as a GGUF at `gguf`, then converted to `type` both ways:
// tmp/st.qrun from the safetensors, tmp/gguf.qrun from the GGUF.
void convert_both_ways(const std::string& dir, const std::filesystem::path& gguf, const std::filesystem::path& tmp, DType type) {
  test::write_bytes(gguf, gguf_from_checkpoint(dir));
  ConvertOptions opt;
  opt.weight_type = type;
  convert_hf_checkpoint(dir, (tmp / "st.qrun").string(), opt);
  convert_gguf(gguf.string(), (tmp / "gguf.qrun").string(), opt, GgufImportOptions{});
}

class GgufArch : public ::testing::TestWithParam<const char*> {};

TEST_P(GgufArch, ImportEqualsSafetensorsConversion) {
  const std::string arch = GetParam();
  std::string why;
  const std::string dir = test::reference_checkpoint(arch, &why);
  if (dir.empty()) GTEST_SKIP() << why;
  test::ScratchDir tmp;
  convert_both_ways(dir, tmp / (arch + ".gguf"), tmp.path(), DType::F32);
  const ModelFile a((tmp / "st.qrun").string()), b((tmp / "gguf.qrun").string());
  format::HParams ha = a.hparams(), hb = b.hparams();
  EXPECT_EQ(hb.arch, ha.arch);
  // llama.cpp's qwen3moe renormalizes the chosen experts' weights whatever the
  // checkpoint's norm_topk_prob (the released models set it; the test model does not).
  EXPECT_EQ(hb.flags, ha.flags | (arch == "qwen3moe" ? format::kNormTopK : 0u));
  EXPECT_EQ(hb.n_experts, ha.n_experts);
  EXPECT_EQ(hb.n_experts_used, ha.n_experts_used);
  EXPECT_EQ(hb.hidden_dim, ha.hidden_dim);
  EXPECT_EQ(hb.shared_hidden_dim, ha.shared_hidden_dim);
  EXPECT_EQ(hb.attn_bias, ha.attn_bias);
  EXPECT_EQ(hb.head_dim, ha.head_dim);
  EXPECT_EQ(hb.sliding_window, ha.sliding_window);
  EXPECT_EQ(hb.sliding_period, ha.sliding_period);
  EXPECT_EQ(hb.rope_local_theta, ha.rope_local_theta);
  EXPECT_EQ(hb.attn_softcap, ha.attn_softcap);
  EXPECT_EQ(hb.final_softcap, ha.final_softcap);
  EXPECT_EQ(hb.tied_embeddings, ha.tied_embeddings);
  EXPECT_EQ(hb.rotary_dim, ha.rotary_dim);
  EXPECT_EQ(hb.rope_scaling, ha.rope_scaling);
  EXPECT_EQ(hb.rope_original_max_pos, ha.rope_original_max_pos);
  EXPECT_FLOAT_EQ(hb.rope_attn_factor, ha.rope_attn_factor);
  EXPECT_FLOAT_EQ(hb.rope_factor, ha.rope_factor);
  EXPECT_FLOAT_EQ(hb.rope_beta_fast, ha.rope_beta_fast);
  EXPECT_EQ(hb.pooling, arch == "qwen3" ? 3u : 0u);
  // (Gemma's GGUF keeps no query scale: see gguf_hparams.)
  if (arch.starts_with("granite")) EXPECT_FLOAT_EQ(hb.query_scale, ha.query_scale);
  EXPECT_FLOAT_EQ(hb.embedding_scale, ha.embedding_scale);
  EXPECT_FLOAT_EQ(hb.residual_scale, ha.residual_scale);
  EXPECT_FLOAT_EQ(hb.logit_scale, ha.logit_scale);
  EXPECT_FLOAT_EQ(hb.swiglu_limit, ha.swiglu_limit);
  expect_same_tensors(a, b);
}

// gpt-oss's MXFP4 experts stay mxfp4 (the checkpoint's values exactly) in a quantized
// file from either source; --type keep keeps them too.
TEST(GgufGptOss, Mxfp4ExpertsStayMxfp4) {
  std::string why;
  const std::string dir = test::reference_checkpoint("gpt-oss", &why);
  if (dir.empty()) GTEST_SKIP() << why;
  test::ScratchDir tmp;
  const auto gguf = tmp / "gpt-oss.gguf";
  convert_both_ways(dir, gguf, tmp.path(), DType::Q8);
  const ModelFile a((tmp / "st.qrun").string()), b((tmp / "gguf.qrun").string());
  EXPECT_EQ(b.find("layers.0.w1_experts")->dtype, DType::Mx4);
  EXPECT_EQ(b.find("layers.0.w2_experts")->dtype, DType::Mx4);
  EXPECT_EQ(b.find("layers.0.wq")->dtype, DType::Q8);
  expect_same_tensors(a, b);
  ConvertOptions opt;
  opt.weight_type = DType::Q8;
  GgufImportOptions keep;
  keep.keep_types = true;
  convert_gguf(gguf.string(), (tmp / "keep.qrun").string(), opt, keep);
  EXPECT_EQ(ModelFile((tmp / "keep.qrun").string()).find("layers.1.w3_experts")->dtype, DType::Mx4);
}

INSTANTIATE_TEST_SUITE_P(Archs, GgufArch, ::testing::Values("qwen3", "gemma2", "gemma3", "phi3", "phi4-mini", "llama-yarn",
                                                                    "qwen3moe", "mixtral", "granite", "granitemoe",
                                                                    "qwen2moe", "gpt-oss"));

}  // namespace
}  // namespace qrun
