#include "src/format/layer_tensor_name.h"

#include <gtest/gtest.h>

#include "qrun/error.h"
#include "qrun/format.h"
#include "src/format/arch_table.h"

namespace qrun {
namespace {

TEST(LayerTensorName, SplitsEachPrefix) {
  int layer = -1;
  std::string role;
  ASSERT_TRUE(split_layer_name("layers.17.w2", "layers.", &layer, &role));
  EXPECT_EQ(layer, 17);
  EXPECT_EQ(role, "w2");
  ASSERT_TRUE(split_layer_name("model.layers.0.self_attn.q_proj.weight", "model.layers.", &layer, &role));
  EXPECT_EQ(layer, 0);
  EXPECT_EQ(role, "self_attn.q_proj.weight");
  ASSERT_TRUE(split_layer_name("blk.999999999.ffn_up.weight", "blk.", &layer, &role));
  EXPECT_EQ(layer, 999999999);
  EXPECT_EQ(role, "ffn_up.weight");
}

TEST(LayerTensorName, RefusesWhatStoiWouldThrowOnOrMisread) {
  int layer = -1;
  std::string role = "untouched";
  for (const char* bad : {"layers..wq", "layers.x.wq", "layers.3", "layers.-1.wq", "layers.+1.wq", "layers. 1.wq",
                          "layers.1234567890.wq", "layers.99999999999999999999.wq", "output", "layer.1.wq"}) {
    EXPECT_FALSE(split_layer_name(bad, "layers.", &layer, &role)) << bad;
    EXPECT_EQ(layer, -1) << bad;
    EXPECT_EQ(role, "untouched") << bad;
  }
}

TEST(LayerTensorName, RecipeLookupRefusesMalformedNamesWithQrunError) {
  int layer = 0;
  EXPECT_EQ(find_recipe("layers.3.wq", static_cast<uint32_t>(format::Arch::Llama), &layer).name, std::string("wq"));
  EXPECT_EQ(layer, 3);
  for (const char* bad : {"layers.x.wq", "layers.99999999999999999999.wq", "layers.3", "layers.3.nope"})
    EXPECT_THROW(find_recipe(bad, static_cast<uint32_t>(format::Arch::Llama), &layer), Error) << bad;
}

}  // namespace
}  // namespace qrun
