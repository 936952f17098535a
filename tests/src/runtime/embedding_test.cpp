// Embeddings (include/qrun/embedding.h) against the float64 reference of the Hugging Face
// modelling code: the final normed hidden states (last_hidden_state) pooled and scaled to
// unit length, as sentence-transformers and llama.cpp make them; and on stories260K, that
// they do not depend on how the tokens are batched or chunked.
#include <gtest/gtest.h>

#include <cmath>

#include "common/hf_reference.h"
#include "common/model_fixture.h"
#include "common/test_paths.h"
#include "qrun/embedding.h"
#include "qrun/error.h"

namespace qrun {
namespace {

std::vector<double> pooled_reference(const std::vector<std::vector<double>>& hidden, Pooling pooling) {
  std::vector<double> v(hidden[0].size(), 0.0);
  if (pooling == Pooling::Mean)
    for (const auto& row : hidden)
      for (size_t d = 0; d < v.size(); ++d) v[d] += row[d] / static_cast<double>(hidden.size());
  else
    v = pooling == Pooling::First ? hidden.front() : hidden.back();
  double norm = 0.0;
  for (double x : v) norm += x * x;
  for (double& x : v) x /= std::sqrt(norm);
  return v;
}

class EmbeddingReference : public ::testing::TestWithParam<const char*> {};

// f32 weights: the pooled unit vector within 5e-4 of the reference's in every component
// (components are around 1/sqrt(dim) = 0.125 here; the KV cache is f16, which alone
// puts them ~1e-4 off), in batches of 5 tokens.
TEST_P(EmbeddingReference, PoolsTheReferenceHiddenStates) {
  test::ScratchDir out;
  std::string why;
  const std::string path = test::converted_reference(GetParam(), DType::F32, out.path(), &why);
  if (path.empty()) GTEST_SKIP() << why;
  const test::Reference ref = test::load_reference(test::reference_checkpoint(GetParam(), &why));
  RuntimeOptions ro;
  ro.threads = 2;
  ro.context = 64;
  ro.batch = 5;
  Model model(path, ro);
  ASSERT_EQ(ref.hidden.size(), ref.tokens.size());
  for (Pooling pooling : {Pooling::Mean, Pooling::First, Pooling::Last}) {
    const std::vector<float> got = embed(model, ref.tokens, pooling);
    const std::vector<double> want = pooled_reference(ref.hidden, pooling);
    ASSERT_EQ(got.size(), want.size());
    double worst = 0.0;
    for (size_t d = 0; d < got.size(); ++d) worst = std::max(worst, std::fabs(got[d] - want[d]));
    EXPECT_LT(worst, 5e-4) << pooling_name(pooling);
    // The cache holds what was evaluated: every token, or the first alone for cls.
    EXPECT_EQ(model.position(), pooling == Pooling::First ? 1 : static_cast<int>(ref.tokens.size()));
  }
}

INSTANTIATE_TEST_SUITE_P(Hf, EmbeddingReference,
                         ::testing::Values("llama", "qwen2", "qwen3", "gemma2", "gemma3", "smollm3", "phi3"),
                         [](const auto& info) { return std::string(info.param); });

std::vector<int32_t> story_tokens(const Model& model, size_t n) {
  const std::string text = test::read_text(test::shared_dir() / "corpus/tinystories_valid_excerpt.txt");
  std::vector<int32_t> ids = model.tokenizer().encode(text.substr(0, 4000), true, false);
  ids.resize(std::min(ids.size(), n));
  return ids;
}

// 150 tokens in batches of 7 or 64 (embed() holds one batch of states at a time): the
// same vector, and the same as pooling forward_hidden's states of the whole text by hand,
// on qrun's kernels for every type. (Float weights' prompt batches on OpenBLAS round by
// the batch's shape: there the two stay within 1e-4.)
class EmbeddingBatches : public ::testing::TestWithParam<DType> {};

TEST_P(EmbeddingBatches, DoNotChangeTheVector) {
  const auto path = test::converted_stories(GetParam()).string();
  RuntimeOptions ro;
  ro.blas = false;
  ro.threads = 2;
  ro.batch = 7;
  Model small(path, ro);
  ro.batch = 64;
  Model large(path, ro);
  const std::vector<int32_t> ids = story_tokens(small, 150);
  ASSERT_EQ(ids.size(), 150u);
  const size_t dim = small.hparams().dim;
  std::vector<float> states(ids.size() * dim);
  large.reset();
  large.forward_hidden(ids, states.data());
  std::vector<std::vector<double>> rows(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) rows[i].assign(states.begin() + i * dim, states.begin() + (i + 1) * dim);
  for (Pooling pooling : {Pooling::Mean, Pooling::First, Pooling::Last}) {
    const std::vector<float> a = embed(small, ids, pooling), b = embed(large, ids, pooling);
    EXPECT_EQ(a, b) << pooling_name(pooling);
    const std::vector<double> want = pooled_reference(rows, pooling);
    for (size_t d = 0; d < dim; ++d) EXPECT_NEAR(a[d], want[d], 1e-6) << pooling_name(pooling) << " at " << d;
  }
  // Last pooling is the last token's state, wherever the text ends; different texts differ.
  const std::vector<float> shorter = embed(small, std::span(ids).first(100), Pooling::Last);
  EXPECT_NE(shorter, embed(small, ids, Pooling::Last));
  double dot = 0.0, norm = 0.0;
  for (size_t d = 0; d < dim; ++d) dot += shorter[d] * rows[99][d], norm += rows[99][d] * rows[99][d];
  EXPECT_NEAR(dot / std::sqrt(norm), 1.0, 1e-5);
  if (dtype_is_quantized(GetParam())) return;
  ro.blas = true;
  Model blas(path, ro);
  const std::vector<float> a = embed(blas, ids, Pooling::Mean), b = embed(large, ids, Pooling::Mean);
  for (size_t d = 0; d < dim; ++d) EXPECT_NEAR(a[d], b[d], 1e-4) << "OpenBLAS, batches of 7, at " << d;
}

INSTANTIATE_TEST_SUITE_P(Types, EmbeddingBatches,
                         ::testing::Values(DType::F32, DType::F16, DType::Q8, DType::Q6, DType::Q5, DType::Q4, DType::Q4N,
                                           DType::Q3),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

// Last pooling keeps the prefix the cache holds: a query after another with the same
// instruction evaluates only its own tokens and gives what a fresh model gives.
TEST(Embedding, LastPoolingReusesTheCachedPrefix) {
  const auto path = test::converted_stories(DType::Q8).string();
  RuntimeOptions ro;
  ro.threads = 1;
  Model warm(path, ro), fresh(path, ro);
  const std::vector<int32_t> ids = story_tokens(warm, 120);
  std::vector<int32_t> other(ids.begin(), ids.begin() + 80);
  other.push_back(ids[100]);  // the same first 80 tokens, then another
  embed(warm, ids, Pooling::Last);
  int evaluated = 0;  // tokens through layer 0
  warm.set_input_observer([&](int layer, MatrixInput which, const float*, int n, int64_t) {
    if (layer == 0 && which == MatrixInput::AttentionIn) evaluated += n;
  });
  EXPECT_EQ(embed(warm, other, Pooling::Last), embed(fresh, other, Pooling::Last));
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(warm.position(), 81);
  // The same tokens again: the last one is evaluated again, the vector the same.
  EXPECT_EQ(embed(warm, other, Pooling::Last), embed(fresh, other, Pooling::Last));
  EXPECT_EQ(evaluated, 2);
  // Mean pooling needs every state: it starts over, and equals a fresh model's too.
  EXPECT_EQ(embed(warm, ids, Pooling::Mean), embed(fresh, ids, Pooling::Mean));
  EXPECT_EQ(evaluated, 2 + 120);
}

TEST(Embedding, RefusesWhatItCannotEmbed) {
  RuntimeOptions ro;
  ro.threads = 1;
  ro.context = 32;
  Model model(test::converted_stories(DType::Q8).string(), ro);
  EXPECT_THROW(embed(model, {}, Pooling::Mean), Error);
  const std::vector<int32_t> ids = story_tokens(model, 33);
  try {
    embed(model, ids, Pooling::Last);
    ADD_FAILURE() << "33 tokens embedded in a context of 32";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("33 tokens exceed the context of 32"), std::string::npos) << e.what();
  }
  EXPECT_EQ(embed(model, std::span(ids).first(32), Pooling::Mean).size(), model.hparams().dim);
}

TEST(Embedding, PoolingNames) {
  for (Pooling p : {Pooling::Mean, Pooling::First, Pooling::Last}) EXPECT_EQ(parse_pooling(pooling_name(p)), p);
  // A requested name wins, else the model's own, else last.
  format::HParams hp{};
  EXPECT_EQ(resolve_pooling(hp), Pooling::Last);
  EXPECT_EQ(resolve_pooling(hp, "mean"), Pooling::Mean);
  hp.pooling = static_cast<uint32_t>(Pooling::First);
  EXPECT_EQ(resolve_pooling(hp), Pooling::First);
  EXPECT_EQ(resolve_pooling(hp, "last"), Pooling::Last);
  try {
    parse_pooling("max");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pooling 'max' is not one of mean, cls, last"), std::string::npos);
  }
}

}  // namespace
}  // namespace qrun
