#include "qrun/stop_strings.h"

#include <gtest/gtest.h>

#include "common/model_fixture.h"
#include "qrun/model.h"

namespace qrun {
namespace {

std::string feed(StopStrings& s, const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += s.push(p);
  return out + s.flush();
}

TEST(StopStrings, StopStringSplitOverPiecesNeverShows) {
  StopStrings s({"User:"});
  EXPECT_EQ(s.push("Hello Us"), "Hello ");  // "Us" might start "User:"
  EXPECT_EQ(s.push("er"), "");
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push(": next"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.matched(), "User:");
  EXPECT_EQ(s.push("more"), "");
  EXPECT_EQ(s.flush(), "");
}

TEST(StopStrings, HeldTextThatTurnsOutNotToStopIsReleased) {
  StopStrings s({"User:"});
  EXPECT_EQ(feed(s, {"a Us", "ual day", " U"}), "a Usual day U");
  EXPECT_FALSE(s.stopped());
}

TEST(StopStrings, EarliestOfSeveralWins) {
  StopStrings s({"world", "lo w"});
  EXPECT_EQ(feed(s, {"hello world"}), "hel");
  EXPECT_EQ(s.matched(), "lo w");
}

TEST(StopStrings, NoStopsPassesEverythingAtOnce) {
  StopStrings s({"", ""});
  EXPECT_EQ(s.push("abc"), "abc");
  EXPECT_EQ(s.flush(), "");
}

// Token by token through a real tokenizer: without a stop string, each token's text in
// turn; with one, the text before it (which may end inside a token) and nothing after.
TEST(ReplyText, StreamsTokensUpToTheStopString) {
  const Model m(test::converted_stories(DType::Q8).string(), RuntimeOptions{});
  const std::vector<int32_t> ids = m.tokenizer().encode("Tom was happy. User: and then", false, false);
  ASSERT_GT(ids.size(), 6u);
  std::string pieces;
  for (int32_t id : ids) pieces += m.tokenizer().token_text(id);
  auto stream = [&](ReplyText& reply) {
    std::string shown;
    for (int32_t id : ids) shown += reply.push(id);
    return shown + reply.finish();
  };
  ReplyText plain(m.tokenizer(), {"Sue:"});
  EXPECT_EQ(stream(plain), pieces);
  EXPECT_FALSE(plain.stopped());
  ReplyText stopping(m.tokenizer(), {"User:"});
  ASSERT_NE(pieces.find("User:"), std::string::npos);
  EXPECT_EQ(stream(stopping), pieces.substr(0, pieces.find("User:")));
  EXPECT_TRUE(stopping.stopped());
}

}  // namespace
}  // namespace qrun
