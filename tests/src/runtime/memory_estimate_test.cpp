// qrun --estimate's table of other types: the bytes it predicts for a type are the bytes
// that type's file really has, so a user can pick the type that fits before converting.
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

#include "common/model_fixture.h"
#include "qrun/memory_estimate.h"
#include "qrun/model.h"

namespace qrun {
namespace {

const TypeEstimate& row(const MemoryEstimate& e, const std::string& type) {
  const auto it = std::find_if(e.as_types.begin(), e.as_types.end(), [&](const TypeEstimate& t) { return t.type == type; });
  EXPECT_NE(it, e.as_types.end()) << type;
  return *it;
}

TEST(MemoryEstimate, PredictsTheWeightsOfEachTypeFromAnotherTypesFile) {
  RuntimeOptions ro;
  ro.context = 128;
  ro.threads = 1;
  const MemoryEstimate q8 = estimate_memory(test::converted_stories(DType::Q8).string(), ro);
  const MemoryEstimate q4 = estimate_memory(test::converted_stories(DType::Q4).string(), ro);
  const MemoryEstimate f32 = estimate_memory(test::converted_stories(DType::F32).string(), ro);
  // Its own type: exactly what the plan counts.
  EXPECT_EQ(row(q8, "q8").weights, q8.weights);
  EXPECT_EQ(row(q8, "q8").total, q8.total());
  // Other types: exactly the bytes that type's file maps (tensors aligned as the writer
  // aligns them; header and tokenizer as in this file).
  for (const auto& [from, to, actual] : {std::tuple{&q8, "q4", &q4}, std::tuple{&q4, "q8", &q8},
                                         std::tuple{&q8, "f32", &f32}, std::tuple{&f32, "q4", &q4}})
    EXPECT_EQ(row(*from, to).weights, actual->weights) << to << " predicted from another type's file";
  // Largest first, and the table names every type qconvert takes.
  for (size_t i = 1; i < q8.as_types.size(); ++i) EXPECT_GE(q8.as_types[i - 1].weights, q8.as_types[i].weights);
  for (const char* t : {"f32", "f16", "q8", "q6", "q5m", "q5", "q4m", "q4n", "q4", "q3m", "q3", "q2k"}) row(q8, t);
}

// A draft model (-md) adds what its own estimate at the model's context needs, less the
// runtime the one process already counts; the table of types carries it too.
TEST(MemoryEstimate, CountsTheDraftModel) {
  RuntimeOptions ro;
  ro.context = 128;
  ro.threads = 1;
  const std::string q8 = test::converted_stories(DType::Q8).string(), q4 = test::converted_stories(DType::Q4).string();
  const MemoryEstimate alone = estimate_memory(q8, ro);
  const MemoryEstimate draft = estimate_memory(q4, ro);
  const MemoryEstimate both = estimate_memory(q8, ro, q4);
  EXPECT_EQ(alone.draft, 0u);
  EXPECT_EQ(both.draft, draft.weights + draft.kv_cache + draft.scratch + draft.tokenizer);
  EXPECT_EQ(both.total(), alone.total() + both.draft);
  EXPECT_EQ(row(both, "q8").total, both.total());
  EXPECT_EQ(row(both, "q4").total, row(alone, "q4").total + both.draft);
  EXPECT_NE(format_estimate(both).find("draft"), std::string::npos);
  EXPECT_EQ(format_estimate(alone).find("draft"), std::string::npos);
  // The draft runs at the model's context, not its own default.
  RuntimeOptions longer = ro;
  longer.context = 256;
  EXPECT_GT(estimate_memory(q8, longer, q4).draft, both.draft);
}

}  // namespace
}  // namespace qrun
