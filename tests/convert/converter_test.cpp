// qconvert on real checkpoints: every type converts, every tensor reads back within
// its type's bound, and bad input is refused with an error naming file and problem
// while leaving no output file behind.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>

#include "common/hf_reference.h"
#include "common/model_fixture.h"
#include "common/safetensors_writer.h"
#include "convert/converter.h"
#include "quant/type_policy.h"
#include "convert/safetensors.h"
#include "qrun/error.h"
#include "qrun/model_file.h"
#include "qrun/model_layout.h"
#include "quant/quantize.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

// Relative RMS error bounds per stored type, measured against the f32 source:
// f16 keeps 11 significant bits; q8 uses 8-bit codes per block of 32; q4 4-bit codes.
double bound_for(DType t) {
  switch (t) {
    case DType::F32: return 0.0;
    case DType::F16: return 1e-3;
    case DType::BF16: return 8e-3;
    case DType::Q8: return 0.01;
    case DType::Q4: return 0.15;
    default: break;  // the suite converts to the types above
  }
  return 0;
}

class ConvertStories : public ::testing::TestWithParam<DType> {};

TEST_P(ConvertStories, EveryTensorMatchesTheSourceWithinItsBound) {
  const DType type = GetParam();
  ModelFile m(test::converted_stories(type).string());
  m.verify_checksums();
  const SafetensorsCheckpoint src(test::stories_dir());
  EXPECT_EQ(m.tensors().size(), expected_tensors(m.hparams()).size());
  for (const auto& t : m.tensors()) {
    EXPECT_EQ(t.dtype, storage_type_for(t.name, TypePolicy{type, false, {}})) << t.name;
    std::vector<float> got(static_cast<size_t>(t.cols)), want(static_cast<size_t>(t.cols));
    const SafeTensor* s = src.find(hf_tensor_name(t.name));
    ASSERT_NE(s, nullptr) << t.name;
    double err2 = 0, ref2 = 0;
    for (int64_t r = 0; r < t.rows; ++r) {
      dequantize_row(t.dtype, t.data + r * t.row_bytes(), t.cols, got.data());
      s->read_f32(r * t.cols, t.cols, want.data());
      for (int64_t c = 0; c < t.cols; ++c) {
        err2 += (got[c] - want[c]) * double(got[c] - want[c]);
        ref2 += want[c] * double(want[c]);
      }
    }
    const double rel = std::sqrt(err2 / std::max(ref2, 1e-30));
    EXPECT_LE(rel, bound_for(t.dtype)) << t.name << " as " << dtype_name(t.dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, ConvertStories, ::testing::Values(DType::F32, DType::F16, DType::Q8, DType::Q4),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Convert, Bf16CheckpointConverts) {
  ScratchDir dir;
  ConvertOptions opt;
  opt.weight_type = DType::Q8;
  const auto s = convert_hf_checkpoint((test::shared_dir() / "models/stories260K-bf16").string(),
                                       (dir / "m.q8").string(), opt);
  EXPECT_GT(s.file_size, 0u);
  ModelFile m((dir / "m.q8").string());
  EXPECT_EQ(m.hparams().n_layers, 5u);
}

TEST(Convert, ShardedCheckpointConverts) {
  // Split stories260K into two shards with an index, as large checkpoints ship.
  ScratchDir dir;
  const fs::path hf = dir / "hf";
  test::copy_stories(hf);
  fs::remove(hf / "model.safetensors");
  const SafetensorsCheckpoint src(test::stories_dir());
  std::vector<test::RawTensor> a, b;
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, t] : src.tensors()) {
    const bool first = name.find("layers.0.") != std::string::npos || name.find("embed") != std::string::npos;
    test::RawTensor r{name, "F32", t.shape, std::vector<uint8_t>(t.data, t.data + t.size)};
    (first ? a : b).push_back(std::move(r));
    index["weight_map"][name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  test::write_safetensors(hf / "model-00001-of-00002.safetensors", a);
  test::write_safetensors(hf / "model-00002-of-00002.safetensors", b);
  test::write_text(hf / "model.safetensors.index.json", index.dump());
  ConvertOptions opt;
  opt.weight_type = DType::F32;
  convert_hf_checkpoint(hf.string(), (dir / "sharded.f32").string(), opt);
  // Same bytes as the single-file conversion.
  EXPECT_EQ(test::read_bytes(dir / "sharded.f32"), test::read_bytes(test::converted_stories(DType::F32)));
}

// Converting a broken folder must fail with `what` in the message and leave nothing.
void expect_refused(const fs::path& hf, const std::string& what) {
  ScratchDir out;
  const fs::path target = out / "model.q4";
  try {
    convert_hf_checkpoint(hf.string(), target.string(), {});
    ADD_FAILURE() << "conversion of " << hf << " succeeded; expected: " << what;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(out.path())) << "output folder not empty after a failed conversion";
}

class BrokenCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override { test::copy_stories(hf_); }
  ScratchDir dir_;
  fs::path hf_ = dir_ / "hf";
};

TEST_F(BrokenCheckpoint, MalformedConfigJson) {
  test::write_text(hf_ / "config.json", "{\"hidden_size\": 64,");
  expect_refused(hf_, "config.json: malformed JSON");
}

TEST_F(BrokenCheckpoint, UnsupportedArchitecture) {
  auto j = nlohmann::json::parse(test::read_text(hf_ / "config.json"));
  j["architectures"] = {"GPTNeoXForCausalLM"};
  test::write_text(hf_ / "config.json", j.dump());
  expect_refused(hf_, "unsupported architecture 'GPTNeoXForCausalLM'; supported: LlamaForCausalLM");
}

TEST_F(BrokenCheckpoint, MissingConfigField) {
  auto j = nlohmann::json::parse(test::read_text(hf_ / "config.json"));
  j.erase("num_hidden_layers");
  test::write_text(hf_ / "config.json", j.dump());
  expect_refused(hf_, "missing field \"num_hidden_layers\"");
}

TEST_F(BrokenCheckpoint, MissingTokenizer) {
  fs::remove(hf_ / "tokenizer.model");
  expect_refused(hf_, "tokenizer");
}

// Another model's tokenizer (Llama 2's 32000 pieces beside stories260K's 512 embedding
// rows): refused at conversion, not when qrun loads the file.
TEST_F(BrokenCheckpoint, TokenizerLargerThanTheVocabulary) {
  fs::copy_file(test::shared_dir() / "tokenizers/llama2/tokenizer.model", hf_ / "tokenizer.model",
                fs::copy_options::overwrite_existing);
  expect_refused(hf_, "the tokenizer has 32000 tokens but config.json's vocab_size is 512");
}

TEST_F(BrokenCheckpoint, MissingWeights) {
  fs::remove(hf_ / "model.safetensors");
  expect_refused(hf_, "no model.safetensors");
}

TEST_F(BrokenCheckpoint, UnsupportedDtypeInSafetensors) {
  const SafetensorsCheckpoint src(test::stories_dir());
  std::vector<test::RawTensor> ts;
  for (const auto& [name, t] : src.tensors())
    ts.push_back({name, name == "model.norm.weight" ? "I32" : "F32", t.shape, std::vector<uint8_t>(t.data, t.data + t.size)});
  test::write_safetensors(hf_ / "model.safetensors", ts);
  expect_refused(hf_, "tensor 'model.norm.weight': unsupported dtype I32");
}

TEST_F(BrokenCheckpoint, SafetensorsHeaderLiesAboutOffsets) {
  const SafetensorsCheckpoint src(test::stories_dir());
  std::vector<test::RawTensor> ts;
  for (const auto& [name, t] : src.tensors())
    ts.push_back({name, "F32", t.shape, std::vector<uint8_t>(t.data, t.data + t.size)});
  test::write_safetensors(hf_ / "model.safetensors", ts, [](nlohmann::json& h) {
    h["model.norm.weight"]["data_offsets"] = {0, 1ull << 40};
  });
  expect_refused(hf_, "tensor 'model.norm.weight': data_offsets");
}

TEST_F(BrokenCheckpoint, SafetensorsHeaderLengthPastEnd) {
  std::vector<uint8_t> bytes(16, 0);
  bytes[0] = 0xff;
  bytes[5] = 0x01;
  test::write_bytes(hf_ / "model.safetensors", bytes);
  expect_refused(hf_, "header length");
}

TEST_F(BrokenCheckpoint, TensorShapeDisagreesWithConfig) {
  auto j = nlohmann::json::parse(test::read_text(hf_ / "config.json"));
  j["intermediate_size"] = 160;
  test::write_text(hf_ / "config.json", j.dump());
  expect_refused(hf_, "config.json implies");
}

// ---- issue 15: checkpoints that were accepted silently although wrong.

// The stories260K tensors, rewritten by `edit` (name, values) into model.safetensors.
void rewrite_weights(const fs::path& hf, const std::function<void(const std::string&, std::vector<float>&)>& edit,
                     const std::function<void(nlohmann::json&)>& header_patch = {}) {
  const SafetensorsCheckpoint src(test::stories_dir());
  std::vector<test::RawTensor> ts;
  for (const auto& [name, t] : src.tensors()) {
    std::vector<float> v(static_cast<size_t>(t.numel()));
    t.read_f32(0, t.numel(), v.data());
    edit(name, v);
    ts.push_back(test::f32_tensor(name, t.shape, v));
  }
  test::write_safetensors(hf / "model.safetensors", ts, header_patch);
}

TEST_F(BrokenCheckpoint, OverlappingTensorBytesAreRefused) {
  // model.norm.weight (64 floats) pointed into the first bytes of the embedding.
  rewrite_weights(hf_, [](const std::string&, std::vector<float>&) {},
                  [](nlohmann::json& h) { h["model.norm.weight"]["data_offsets"] = {100, 356}; });
  expect_refused(hf_, "overlap");
  try {
    SafetensorsCheckpoint ckpt(hf_);
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("model.safetensors: at offset "), std::string::npos) << what;
    EXPECT_NE(what.find("tensors 'model.embed_tokens.weight' (data_offsets [0, 131072)) and 'model.norm.weight' "
                        "([100, 356)) overlap"),
              std::string::npos)
        << what;
  }
}

TEST_F(BrokenCheckpoint, ShapeWhoseElementCountOverflowsIsRefused) {
  // 2^32 * 2^32 wrapped to 0 elements, matching empty data_offsets.
  rewrite_weights(hf_, [](const std::string&, std::vector<float>&) {}, [](nlohmann::json& h) {
    h["extra"] = {{"dtype", "F32"}, {"shape", {1ull << 32, 1ull << 32}}, {"data_offsets", {0, 0}}};
  });
  expect_refused(hf_, "tensor 'extra': shape [4294967296,4294967296] has more than 2^40 elements");
  SafeTensor t{"w", SafeDType::F32, {int64_t{1} << 32, int64_t{1} << 32}, nullptr, 0, "x.safetensors"};
  try {
    (void)t.numel();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.safetensors: tensor 'w': shape does not give an element count"),
              std::string::npos)
        << e.what();
  }
  t.shape = {3, 0, int64_t{1} << 40};
  EXPECT_EQ(t.numel(), 0);
}

TEST_F(BrokenCheckpoint, FewerLayersInConfigThanInTheCheckpoint) {
  auto j = nlohmann::json::parse(test::read_text(hf_ / "config.json"));
  j["num_hidden_layers"] = 4;
  test::write_text(hf_ / "config.json", j.dump());
  expect_refused(hf_, "checkpoint tensor 'model.layers.4.");
  expect_refused(hf_, "belongs to a layer beyond num_hidden_layers 4 in config.json");
}

// A bias with attention_bias false would be dropped; a rotary inv_freq buffer (older
// Llama checkpoints) is recomputed at load and may stay.
TEST_F(BrokenCheckpoint, TensorTheConfigDoesNotUseIsRefused) {
  const SafetensorsCheckpoint src(test::stories_dir());
  std::vector<test::RawTensor> ts;
  for (const auto& [name, t] : src.tensors())
    ts.push_back({name, "F32", t.shape, std::vector<uint8_t>(t.data, t.data + t.size)});
  ts.push_back(test::f32_tensor("model.layers.0.self_attn.rotary_emb.inv_freq", {4}, std::vector<float>(4, 1.0f)));
  test::write_safetensors(hf_ / "model.safetensors", ts);
  {
    ScratchDir out;
    EXPECT_GT(convert_hf_checkpoint(hf_.string(), (out / "m.q4").string(), {}).file_size, 0u);
  }
  ts.push_back(test::f32_tensor("model.layers.0.self_attn.q_proj.bias", {64}, std::vector<float>(64, 0.5f)));
  test::write_safetensors(hf_ / "model.safetensors", ts);
  expect_refused(hf_, "model.safetensors: checkpoint tensor 'model.layers.0.self_attn.q_proj.bias' is not used by the "
                      "model config.json describes");
}

TEST_F(BrokenCheckpoint, NonFiniteWeightsAreRefusedNamingTheTensor) {
  for (const float bad : {NAN, INFINITY}) {
    rewrite_weights(hf_, [&](const std::string& name, std::vector<float>& v) {
      if (name == "model.layers.2.mlp.up_proj.weight") v[64 * 3 + 5] = bad;
    });
    for (DType type : {DType::Q4, DType::Q8, DType::F16, DType::F32}) {
      ScratchDir out;
      ConvertOptions opt;
      opt.weight_type = type;
      opt.threads = 2;
      try {
        convert_hf_checkpoint(hf_.string(), (out / "m").string(), opt);
        ADD_FAILURE() << dtype_name(type) << " accepted a non-finite weight";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::string("tensor 'model.layers.2.mlp.up_proj.weight' has a non-finite "
                                                         "value (") + (std::isnan(bad) ? "nan" : "inf") + ") at [3, 5]"),
                  std::string::npos)
            << e.what();
      }
      EXPECT_TRUE(fs::is_empty(out.path()));
    }
  }
}

// OpenAI's MXFP4 pairs: "X_blocks" [rows, groups, 16] and "X_scales" [rows, groups] read
// as one tensor "X" [rows, groups * 32], code c of each byte's low nibble first, times
// 2^(scale - 127); a _blocks without its _scales, or with scales of another shape, is
// refused naming the tensor.
TEST(Safetensors, Mxfp4PairsReadAsOneTensor) {
  ScratchDir dir;
  const float e2m1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};
  std::vector<uint8_t> blocks(2 * 2 * 16), scales = {127, 120, 130, 1};  // rows 2, groups 2
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = uint8_t((i * 7) % 16 | ((i * 5 + 3) % 16) << 4);
  const test::RawTensor b{"w_blocks", "U8", {2, 2, 16}, blocks}, sc{"w_scales", "U8", {2, 2}, scales};
  test::write_safetensors(dir / "model.safetensors", {b, sc, test::f32_tensor("v", {2}, {1, 2})});
  const SafetensorsCheckpoint ckpt(dir.path());
  ASSERT_EQ(ckpt.find("w_blocks"), nullptr);
  const SafeTensor* w = ckpt.find("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 64}));
  std::vector<float> got(128);
  w->read_f32(0, 64, got.data());
  w->read_f32(64 + 33, 31, got.data() + 64 + 33);  // a read that starts inside a block
  w->read_f32(64, 33, got.data() + 64);
  for (size_t i = 0; i < 128; ++i) {
    const uint8_t byte = blocks[i / 2];
    const float want = std::ldexp(e2m1[i % 2 ? byte >> 4 : byte & 15], int(scales[i / 32]) - 127);
    ASSERT_EQ(got[i], want) << i;
  }
  test::write_safetensors(dir / "model.safetensors", {b});
  try {
    SafetensorsCheckpoint bad(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MXFP4 tensor 'w': has _blocks but no U8 _scales"), std::string::npos) << e.what();
  }
  test::write_safetensors(dir / "model.safetensors", {b, test::RawTensor{"w_scales", "U8", {2, 3}, std::vector<uint8_t>(6)}});
  try {
    SafetensorsCheckpoint bad(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MXFP4 tensor 'w': _blocks must be"), std::string::npos) << e.what();
  }
  test::write_safetensors(dir / "model.safetensors", {test::RawTensor{"raw", "U8", {4}, std::vector<uint8_t>(4)}});
  const SafetensorsCheckpoint raw(dir.path());
  float x[4];
  EXPECT_THROW(raw.find("raw")->read_f32(0, 4, x), Error);
}

// gpt-oss's MXFP4 experts stay MXFP4 (qrun's mxfp4, exactly the checkpoint's values,
// gate and up rows taken from their interleaved tensor) in a q4 file, unless a
// --tensor-type rule names them; its attention takes the asked-for type.
TEST(Convert, GptOssMxfp4ExpertsStayExact) {
  std::string why;
  const std::string ref = test::reference_checkpoint("gpt-oss", &why);
  if (ref.empty()) GTEST_SKIP() << why;
  ScratchDir dir;
  ConvertOptions opt;
  opt.weight_type = DType::Q4;
  convert_hf_checkpoint(ref, (dir / "a.qrun").string(), opt);
  const ModelFile f((dir / "a.qrun").string());
  const SafetensorsCheckpoint src(ref);
  const SafeTensor* gate_up = src.find("model.layers.1.mlp.experts.gate_up_proj");
  ASSERT_NE(gate_up, nullptr);
  EXPECT_EQ(f.get("layers.1.wq").dtype, DType::Q4);
  const int64_t dim = f.hparams().dim, hidden = f.hparams().hidden_dim;
  std::vector<float> got(static_cast<size_t>(dim)), want(got.size());
  for (const auto& [name, parity] : {std::pair{"layers.1.w1_experts", 0}, std::pair{"layers.1.w3_experts", 1}}) {
    const TensorView& t = f.get(name);
    ASSERT_EQ(t.dtype, DType::Mx4) << name;
    for (const int64_t r : {int64_t{0}, hidden - 1, 3 * hidden + 7}) {  // expert 0's first and last rows, expert 3's
      dequantize_row(t.dtype, t.data + r * dtype_row_bytes(t.dtype, dim), dim, got.data());
      gate_up->read_f32((r / hidden * 2 * hidden + 2 * (r % hidden) + parity) * dim, dim, want.data());
      EXPECT_EQ(got, want) << name << " row " << r;
    }
  }
  opt.tensor_types = {"w2_experts=q8"};
  convert_hf_checkpoint(ref, (dir / "b.qrun").string(), opt);
  const ModelFile g((dir / "b.qrun").string());
  EXPECT_EQ(g.get("layers.0.w2_experts").dtype, DType::Q8);
  EXPECT_EQ(g.get("layers.0.w1_experts").dtype, DType::Mx4);
}

TEST(Convert, OutputFolderMissing) {
  try {
    convert_hf_checkpoint(test::stories_dir().string(), "/nonexistent-dir/x.q4", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create a temporary file"), std::string::npos) << e.what();
  }
}

// A mixture-of-experts checkpoint (the synthetic Qwen3-MoE reference) with an expert
// missing, one of the wrong shape, or a non-finite weight in one: each refused naming the
// expert's own tensor; with one expert more than config.json says, the router's shape.
TEST(ExpertCheckpoint, ProblemsNameTheExpertsTensor) {
  std::string why;
  const std::string ref = test::reference_checkpoint("qwen3moe", &why);
  if (ref.empty()) GTEST_SKIP() << why;
  ScratchDir dir;
  const fs::path hf = dir / "hf";
  fs::create_directories(hf);
  for (const auto& f : fs::directory_iterator(ref))
    if (f.path().filename() != "model.safetensors") fs::copy(f.path(), hf / f.path().filename());
  auto write = [&](const std::function<bool(const std::string&, std::vector<int64_t>&, std::vector<float>&)>& edit) {
    const SafetensorsCheckpoint src(ref);
    std::vector<test::RawTensor> ts;
    for (const auto& [name, t] : src.tensors()) {
      std::vector<float> v(static_cast<size_t>(t.numel()));
      t.read_f32(0, t.numel(), v.data());
      std::vector<int64_t> shape = t.shape;
      if (edit(name, shape, v)) ts.push_back(test::f32_tensor(name, shape, v));
    }
    test::write_safetensors(hf / "model.safetensors", ts);
  };
  write([](const std::string& n, auto&, auto&) { return n != "model.layers.1.mlp.experts.3.up_proj.weight"; });
  expect_refused(hf, "checkpoint lacks tensor 'model.layers.1.mlp.experts.3.up_proj.weight'");
  write([](const std::string& n, std::vector<int64_t>& shape, std::vector<float>& v) {
    if (n == "model.layers.2.mlp.experts.5.down_proj.weight") shape[1] -= 1, v.resize(v.size() - size_t(shape[0]));
    return true;
  });
  expect_refused(hf, "tensor 'model.layers.2.mlp.experts.5.down_proj.weight' has shape [64, 31], config.json implies [64, 32]");
  write([](const std::string& n, auto&, std::vector<float>& v) {
    if (n == "model.layers.0.mlp.experts.6.gate_proj.weight") v[64 * 7 + 2] = NAN;
    return true;
  });
  expect_refused(hf, "tensor 'model.layers.0.mlp.experts.6.gate_proj.weight' has a non-finite value (nan) at [7, 2]");
  write([](const std::string&, auto&, auto&) { return true; });
  auto config = nlohmann::json::parse(test::read_text(hf / "config.json"));
  config["num_experts"] = 7;
  test::write_text(hf / "config.json", config.dump());
  expect_refused(hf, "tensor 'model.layers.0.mlp.gate.weight' has shape [8, 64], config.json implies [7, 64]");
}

}  // namespace
}  // namespace qrun
