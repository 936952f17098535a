// qrun --lora: an adapter applied at run time over the base file gives the logits of the
// file qconvert --lora merged it into (two independent paths: W x + B (A x) in the
// projections, and W + s B A written at conversion), for Llama's separate projections and
// Phi-3's fused qkv_proj / gate_up_proj, in prompt batches and one-token steps.
#include <gtest/gtest.h>

#include <cmath>

#include "common/gguf_writer.h"
#include "common/hf_reference.h"
#include "common/model_fixture.h"
#include "common/lora_adapter_writer.h"
#include "common/test_paths.h"
#include "convert/converter.h"
#include "convert/gguf_rope_order.h"
#include "convert/safetensors.h"
#include "qrun/error.h"
#include "qrun/lora.h"
#include "qrun/model.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

std::string convert_f32(const fs::path& hf, const fs::path& out, const std::vector<LoraOption>& lora) {
  ConvertOptions o;
  o.weight_type = DType::F32;
  o.lora = lora;
  convert_hf_checkpoint(hf.string(), out.string(), o);
  return out.string();
}

// Logits of every prompt position (one batch of 3, then the rest) and of two steps.
std::vector<float> run(const std::string& path, std::shared_ptr<const LoraUpdates> lora) {
  RuntimeOptions ro;
  ro.threads = 2;
  ro.lora = std::move(lora);
  Model m(path, ro);
  const int vocab = static_cast<int>(m.hparams().vocab_size);
  const std::vector<int32_t> prompt{1, 5, 9, 14, 3, 7, 21, 2};
  std::vector<float> all(prompt.size() * size_t(vocab) + 2 * size_t(vocab));
  m.forward(std::span(prompt).first(3), all.data(), true);
  m.forward(std::span(prompt).subspan(3), all.data() + 3 * vocab, true);
  m.step(11, all.data() + prompt.size() * vocab);
  m.step(4, all.data() + (prompt.size() + 1) * vocab);
  return all;
}

void expect_same_logits(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& base) {
  ASSERT_EQ(got.size(), want.size());
  double worst = 0, largest = 0, moved = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, double(std::abs(got[i] - want[i])));
    largest = std::max(largest, double(std::abs(want[i])));
    moved = std::max(moved, double(std::abs(want[i] - base[i])));
  }
  EXPECT_GT(moved, 0.05 * largest) << "the adapter must change the logits";
  EXPECT_LT(worst, 1e-4 * largest) << "run-time adapter vs merged file: worst difference " << worst << " of " << largest;
}

void check_run_time_equals_merged(const fs::path& hf, const std::vector<std::string>& modules) {
  ScratchDir dir;
  test::write_lora_adapter(hf, dir / "adapter", modules);
  // Two adapters stack on the rank; scales 2 * 0.5 and 2 * 0.25 keep f16 factors exact.
  const std::vector<LoraOption> lora{{dir / "adapter", 0.5f}, {dir / "adapter", 0.25f}};
  const std::string base = convert_f32(hf, dir / "base.f32", {}), merged = convert_f32(hf, dir / "merged.f32", lora);
  const auto updates = std::make_shared<const LoraUpdates>(load_lora_updates(base, lora));
  EXPECT_EQ(updates->size(), modules.size() + (modules.size() == 2 ? 3 : 0));  // Phi-3: qkv -> wq, wk, wv; gate_up -> w1, w3
  expect_same_logits(run(base, updates), run(merged, nullptr), run(base, nullptr));
}

TEST(LoraAtRunTime, EqualsTheMergedFileOnStories) {
  check_run_time_equals_merged(test::stories_dir(),
                               {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.k_proj",
                                "model.layers.2.self_attn.v_proj", "model.layers.3.self_attn.o_proj",
                                "model.layers.4.mlp.gate_proj", "model.layers.0.mlp.up_proj",
                                "model.layers.2.mlp.down_proj"});
}

TEST(LoraAtRunTime, EqualsTheMergedFileOnPhi3FusedProjections) {
  std::string why;
  const std::string hf = test::reference_checkpoint("phi3", &why);
  if (hf.empty()) GTEST_SKIP() << why;
  check_run_time_equals_merged(hf, {"model.layers.0.self_attn.qkv_proj", "model.layers.1.mlp.gate_up_proj"});
}

TEST(LoraAtRunTime, WhatOnlyAMergeCanApplyIsRefused) {
  ScratchDir dir;
  const std::string base = test::converted_stories(DType::Q8).string();
  fs::create_directories(dir / "embed");
  test::write_safetensors(dir / "embed" / "adapter_model.safetensors",
                          {test::f32_tensor("base_model.model.model.embed_tokens.lora_embedding_A", {2, 512},
                                            std::vector<float>(1024, 0.1f)),
                           test::f32_tensor("base_model.model.model.embed_tokens.lora_embedding_B", {64, 2},
                                            std::vector<float>(128, 0.1f))});
  test::write_text(dir / "embed" / "adapter_config.json", R"({"lora_alpha": 2})");
  fs::create_directories(dir / "saved");
  test::write_safetensors(dir / "saved" / "adapter_model.safetensors",
                          {test::f32_tensor("base_model.model.model.norm.weight", {64}, std::vector<float>(64, 1))});
  test::write_text(dir / "saved" / "adapter_config.json", R"({"lora_alpha": 2})");
  for (const auto& [adapter, what] : {std::pair{"embed", "changes 'model.embed_tokens.weight' (qrun's tok_embeddings)"},
                                      std::pair{"saved", "replaces 'model.norm.weight' whole (modules_to_save)"}}) {
    try {
      load_lora_updates(base, {{dir / adapter, 1.0f}});
      ADD_FAILURE() << adapter << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("only a merge applies it (qconvert --lora)"), std::string::npos) << e.what();
    }
  }
}

// llama.cpp's GGUF adapter of the same factors (its names, ne order, and Q/K rows in its
// RoPE order, as convert_lora_to_gguf.py writes a Llama adapter) gives the same updates.
TEST(LoraAtRunTime, AGgufAdapterEqualsItsPeftFolder) {
  ScratchDir dir;
  const std::vector<std::string> modules = test::stories_layer_modules(3);
  test::write_lora_adapter(test::stories_dir(), dir / "peft", modules);
  const SafetensorsCheckpoint peft(dir / "peft" / "adapter_model.safetensors");
  const std::map<std::string, std::string> gguf_names{
      {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  test::GgufWriter w;
  w.str("general.architecture", "llama");
  w.str("general.type", "adapter");
  w.str("adapter.type", "lora");
  w.f32("adapter.lora.alpha", 8.0f);
  auto f32_bytes = [](const std::vector<float>& v) {
    std::vector<uint8_t> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  for (const std::string& m : modules) {
    const std::string role = m.substr(std::string("model.layers.3.").size());
    const SafeTensor& a = *peft.find("base_model.model." + m + ".lora_A.weight");
    const SafeTensor& b = *peft.find("base_model.model." + m + ".lora_B.weight");
    const int64_t r = a.shape[0], cols = a.shape[1], rows = b.shape[0];
    std::vector<float> av(size_t(r * cols)), bv(size_t(rows * r)), bg(bv.size());
    a.read_f32(0, r * cols, av.data());
    b.read_f32(0, rows * r, bv.data());
    const bool qk = role == "self_attn.q_proj" || role == "self_attn.k_proj";
    for (int64_t row = 0; row < rows; ++row) {  // HF row `row` is llama.cpp's row gguf_unpermuted_row(row)
      const int64_t g = qk ? gguf_unpermuted_row(row, 8) : row;
      std::copy_n(&bv[size_t(row * r)], r, &bg[size_t(g * r)]);
    }
    const std::string name = "blk.3." + gguf_names.at(role) + ".weight";
    w.tensor(name + ".lora_a", {cols, r}, test::kGgmlF32, f32_bytes(av));
    w.tensor(name + ".lora_b", {r, rows}, test::kGgmlF32, f32_bytes(bg));
  }
  test::write_bytes(dir / "adapter.gguf", w.bytes());
  const std::string base = test::converted_stories(DType::Q8).string();
  const LoraUpdates from_peft = load_lora_updates(base, {{dir / "peft", 0.5f}});
  const LoraUpdates from_gguf = load_lora_updates(base, {{dir / "adapter.gguf", 0.5f}});
  ASSERT_EQ(from_gguf.size(), modules.size());
  ASSERT_EQ(from_peft.size(), modules.size());
  for (const auto& [name, u] : from_peft) {
    ASSERT_TRUE(from_gguf.count(name)) << name;
    const LowRankUpdate& g = from_gguf.at(name);
    EXPECT_EQ(g.rank, u.rank) << name;
    EXPECT_EQ(g.a, u.a) << name;
    EXPECT_EQ(g.b, u.b) << name;
  }

  // An adapter of another model: its tensor is named with the file and offset.
  test::GgufWriter other;
  other.str("general.type", "adapter");
  other.str("adapter.type", "lora");
  other.tensor("blk.9.attn_q.weight.lora_a", {64, 2}, test::kGgmlF32, f32_bytes(std::vector<float>(128, 0.1f)));
  other.tensor("blk.9.attn_q.weight.lora_b", {2, 64}, test::kGgmlF32, f32_bytes(std::vector<float>(128, 0.1f)));
  test::write_bytes(dir / "other.gguf", other.bytes());
  try {
    load_lora_updates(base, {{dir / "other.gguf", 1.0f}});
    ADD_FAILURE() << "an adapter of a 10-layer model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.9.attn_q.weight.lora_a' changes a weight this model does not have"),
              std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qrun
