#include "qrun/stop_strings.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace qrun
