// /v1/embeddings entries (src/server/embedding_reply.h): base64 of the float32 bytes as
// RFC 4648 writes it, and `dimensions` as a unit-length prefix.
#include "src/server/embedding_reply.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace qrun::server {
namespace {

TEST(EmbeddingReply, Base64AsRfc4648) {
  // RFC 4648 section 10's test vectors.
  const std::pair<std::string, std::string> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : vectors) EXPECT_EQ(base64_encode(in), out);
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

// Each float in its shortest text, read back as the same float: NaN-free values from
// every range (subnormals, tiny, huge, negative zero).
TEST(EmbeddingReply, FloatsInTheirShortestText) {
  const std::vector<float> values = {0.0273805168f, -0.4242833853f, 1.0f, 0.1f, 1e-30f, 1.17549435e-38f,
                                     1.4e-45f,      3.4028235e38f,  -0.0f, 123456.789f};
  const nlohmann::json a = float_array(values);
  EXPECT_EQ(a.dump().substr(0, 27), "[0.027380517,-0.4242834,1.0");
  const auto back = nlohmann::json::parse(a.dump()).get<std::vector<float>>();
  ASSERT_EQ(back.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(back[i], values[i]) << i;
    EXPECT_EQ(std::signbit(back[i]), std::signbit(values[i])) << i;
  }
}

TEST(EmbeddingReply, EntriesInOpenAiShape) {
  const std::vector<float> v = {0.6f, 0.0f, 0.8f, 0.0f};
  nlohmann::json e = embedding_entry(v, 3, std::nullopt, false);
  EXPECT_EQ(e["object"], "embedding");
  EXPECT_EQ(e["index"], 3);
  EXPECT_EQ(e["embedding"].get<std::vector<float>>(), v);
  // base64: the same floats' bytes, little-endian (1.0f is 00 00 80 3f).
  e = embedding_entry({1.0f}, 0, std::nullopt, true);
  EXPECT_EQ(e["embedding"], "AACAPw==");
  // dimensions: the first ones, back to unit length; as many as there are: unchanged.
  e = embedding_entry(v, 0, 2, false);
  const auto two = e["embedding"].get<std::vector<float>>();
  ASSERT_EQ(two.size(), 2u);
  EXPECT_FLOAT_EQ(two[0], 1.0f);
  EXPECT_FLOAT_EQ(two[1], 0.0f);
  EXPECT_EQ(embedding_entry(v, 0, 4, false)["embedding"].get<std::vector<float>>(), v);
  e = embedding_entry({0.0f, 0.0f, 1.0f}, 0, 2, true);  // a zero prefix stays zero, no NaN
  EXPECT_EQ(e["embedding"], "AAAAAAAAAAA=");
}

}  // namespace
}  // namespace qrun::server
