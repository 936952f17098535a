// qconvert --lora: a PEFT adapter merged into stories260K while converting gives, tensor
// by tensor, W + scale * B A computed here in double (Linear layers, an embedding, a
// modules_to_save replacement, alpha_pattern and rsLoRA scales); adapters that do not fit
// the model are refused naming the adapter's file and tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "common/lora_adapter_writer.h"
#include "common/test_paths.h"
#include "convert/converter.h"
#include "convert/lora_adapter.h"
#include "qrun/error.h"
#include "qrun/model_file.h"
#include "quant/quantize.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

struct Factor {
  std::string module;  // e.g. "model.layers.0.self_attn.q_proj"
  int64_t rows, cols, rank;
  bool embedding = false;
  std::vector<float> a, b;  // Linear: A [rank, cols], B [rows, rank]; embedding: A [rank, rows], B [cols, rank]
};

Factor make_factor(const std::string& module, int64_t rows, int64_t cols, int64_t rank, uint32_t seed,
                   bool embedding = false) {
  Factor f{module, rows, cols, rank, embedding, {}, {}};
  f.a = test::pseudo_random(static_cast<size_t>(rank * (embedding ? rows : cols)), seed, 0.2f);
  f.b = test::pseudo_random(static_cast<size_t>((embedding ? cols : rows) * rank), seed + 7, 0.2f);
  return f;
}

void write_adapter(const fs::path& dir, const std::vector<Factor>& factors, const nlohmann::json& config,
                   std::vector<test::RawTensor> extra = {}) {
  fs::create_directories(dir);
  std::vector<test::RawTensor> tensors = std::move(extra);
  for (const Factor& f : factors) {
    const std::string p = "base_model.model." + f.module;
    const int64_t a_cols = f.embedding ? f.rows : f.cols, b_rows = f.embedding ? f.cols : f.rows;
    tensors.push_back(test::f32_tensor(p + (f.embedding ? ".lora_embedding_A" : ".lora_A.weight"), {f.rank, a_cols}, f.a));
    tensors.push_back(test::f32_tensor(p + (f.embedding ? ".lora_embedding_B" : ".lora_B.weight"), {b_rows, f.rank}, f.b));
  }
  test::write_safetensors(dir / "adapter_model.safetensors", tensors);
  test::write_text(dir / "adapter_config.json", config.dump());
}

nlohmann::json lora_config(double alpha, int r) {
  return {{"peft_type", "LORA"}, {"r", r}, {"lora_alpha", alpha}, {"target_modules", {"q_proj", "v_proj"}},
          {"use_rslora", false}, {"use_dora", false}, {"fan_in_fan_out", false}};
}

std::vector<float> tensor_f32(const ModelFile& m, const std::string& name) {
  const auto& t = m.get(name);
  std::vector<float> out(static_cast<size_t>(t.rows * t.cols));
  for (int64_t r = 0; r < t.rows; ++r) dequantize_row(t.dtype, t.data + r * t.row_bytes(), t.cols, &out[size_t(r * t.cols)]);
  return out;
}

// W + scale * (B A) (Linear) or + scale * (B A)^T (embedding), in double.
std::vector<double> merged(const std::vector<float>& base, const Factor& f, double scale) {
  std::vector<double> w(base.begin(), base.end());
  for (int64_t r = 0; r < f.rows; ++r)
    for (int64_t c = 0; c < f.cols; ++c) {
      double s = 0;
      for (int64_t k = 0; k < f.rank; ++k)
        s += f.embedding ? double(f.b[size_t(c * f.rank + k)]) * f.a[size_t(k * f.rows + r)]
                         : double(f.b[size_t(r * f.rank + k)]) * f.a[size_t(k * f.cols + c)];
      w[size_t(r * f.cols + c)] += scale * s;
    }
  return w;
}

void convert_f32(const fs::path& out, const std::vector<LoraOption>& lora) {
  ConvertOptions o;
  o.weight_type = DType::F32;
  o.lora = lora;
  convert_hf_checkpoint(test::stories_dir().string(), out.string(), o);
}

class LoraMerge : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ScratchDir;
    convert_f32(*dir_ / "base.f32", {});
  }
  static void TearDownTestSuite() { delete dir_; }
  static ScratchDir* dir_;
};
ScratchDir* LoraMerge::dir_ = nullptr;

TEST_F(LoraMerge, EveryChangedTensorIsBasePlusScaledProduct) {
  // stories260K: dim 64, 4 KV heads of 8, FFN 172, vocabulary 512.
  const std::vector<Factor> factors{
      make_factor("model.layers.0.self_attn.q_proj", 64, 64, 4, 1),
      make_factor("model.layers.3.self_attn.v_proj", 32, 64, 4, 2),
      make_factor("model.layers.2.mlp.down_proj", 64, 172, 4, 3),  // alpha_pattern: alpha 2
      make_factor("model.embed_tokens", 512, 64, 4, 4, true),
  };
  nlohmann::json config = lora_config(8.0, 4);
  config["alpha_pattern"] = {{"down_proj", 2.0}};
  const std::vector<float> norm = test::pseudo_random(64, 9, 1.0f);
  write_adapter(*dir_ / "adapter", factors, config, {test::f32_tensor("base_model.model.model.norm.weight", {64}, norm)});
  convert_f32(*dir_ / "merged.f32", {{*dir_ / "adapter", 0.5f}});

  const ModelFile base((*dir_ / "base.f32").string()), got((*dir_ / "merged.f32").string());
  const std::map<std::string, std::pair<const Factor*, double>> changed{
      {"layers.0.wq", {&factors[0], 0.5 * 8 / 4}},
      {"layers.3.wv", {&factors[1], 0.5 * 8 / 4}},
      {"layers.2.w2", {&factors[2], 0.5 * 2 / 4}},
      {"tok_embeddings", {&factors[3], 0.5 * 8 / 4}},
  };
  for (const auto& t : base.tensors()) {
    const std::vector<float> b = tensor_f32(base, t.name), m = tensor_f32(got, t.name);
    if (t.name == "norm") {
      EXPECT_EQ(m, norm) << "modules_to_save replaces the final norm";
      continue;
    }
    const auto it = changed.find(t.name);
    if (it == changed.end()) {
      EXPECT_EQ(m, b) << t.name << " has no adapter and must stay as it was";
      continue;
    }
    const std::vector<double> want = merged(b, *it->second.first, it->second.second);
    double worst = 0, moved = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      worst = std::max(worst, std::abs(m[i] - want[i]));
      moved = std::max(moved, std::abs(want[i] - b[i]));
    }
    EXPECT_GT(moved, 1e-3) << t.name << ": the adapter must change it";
    EXPECT_LT(worst, 1e-6) << t.name;  // f32 sums of 4 products
  }
}

TEST_F(LoraMerge, RsLoraScalesByTheRootOfTheRank) {
  const Factor f = make_factor("model.layers.1.self_attn.q_proj", 64, 64, 16, 11);
  nlohmann::json config = lora_config(4.0, 16);
  config["use_rslora"] = true;
  write_adapter(*dir_ / "rs", {f}, config);
  convert_f32(*dir_ / "rs.f32", {{*dir_ / "rs", 1.0f}});
  const ModelFile base((*dir_ / "base.f32").string()), got((*dir_ / "rs.f32").string());
  const std::vector<double> want = merged(tensor_f32(base, "layers.1.wq"), f, 4.0 / std::sqrt(16.0));
  const std::vector<float> m = tensor_f32(got, "layers.1.wq");
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(m[i], want[i], 1e-6) << i;
}

void expect_refused(const fs::path& adapter, const std::string& what) {
  ScratchDir out;
  try {
    convert_f32(out / "x.f32", {{adapter, 1.0f}});
    ADD_FAILURE() << "merging " << adapter << " succeeded; expected: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(out.path())) << "output left behind after a refused adapter";
}

TEST(LoraRefused, AdaptersThatDoNotFitNameFileAndTensor) {
  ScratchDir d;
  const nlohmann::json ok = lora_config(8.0, 4);
  write_adapter(d / "layer9", {make_factor("model.layers.9.self_attn.q_proj", 64, 64, 4, 1)}, ok);
  expect_refused(d / "layer9", "model.layers.9.self_attn.q_proj' changes 'model.layers.9.self_attn.q_proj.weight', which "
                               "the conversion does not read");
  write_adapter(d / "wide", {make_factor("model.layers.0.self_attn.k_proj", 64, 64, 4, 1)}, ok);
  expect_refused(d / "wide", "do not fit 'model.layers.0.self_attn.k_proj.weight' [32, 64]");
  write_adapter(d / "tied", {make_factor("lm_head", 512, 64, 4, 1)}, ok);
  expect_refused(d / "tied", "changes 'lm_head.weight', which the conversion does not read");

  nlohmann::json dora = ok;
  dora["use_dora"] = true;
  write_adapter(d / "dora", {make_factor("model.layers.0.self_attn.q_proj", 64, 64, 4, 1)}, dora);
  expect_refused(d / "dora", "adapter_config.json: use_dora is true");
  nlohmann::json ia3 = ok;
  ia3["peft_type"] = "IA3";
  write_adapter(d / "ia3", {}, ia3);
  expect_refused(d / "ia3", "peft_type is \"IA3\"");

  const Factor q = make_factor("model.layers.0.self_attn.q_proj", 64, 64, 4, 1);
  fs::create_directories(d / "half");
  test::write_safetensors(d / "half" / "adapter_model.safetensors",
                          {test::f32_tensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", {4, 64}, q.a)});
  test::write_text(d / "half" / "adapter_config.json", ok.dump());
  expect_refused(d / "half", "LoRA module 'model.layers.0.self_attn.q_proj' has A but no B matrix");

  fs::create_directories(d / "pickle");
  test::write_text(d / "pickle" / "adapter_config.json", ok.dump());
  test::write_text(d / "pickle" / "adapter_model.bin", "not read");
  expect_refused(d / "pickle", "adapter_model.bin: a PyTorch pickle");
  fs::create_directories(d / "empty");
  expect_refused(d / "empty", "no adapter_config.json");
  test::write_text(d / "empty" / "adapter_config.json", "{\"lora_alpha\": ");
  expect_refused(d / "empty", "adapter_config.json");
}

}  // namespace
}  // namespace qrun
