// Server-sent events with names ("event: NAME\ndata: JSON\n\n"), as Anthropic's and the
// Responses API's streams send them: each event's name and data, comments (the server's
// keep-alives) left out.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qrun::test {

inline std::vector<std::pair<std::string, nlohmann::json>> named_events(const std::string& sse) {
  std::vector<std::pair<std::string, nlohmann::json>> out;
  size_t at = 0;
  while (at < sse.size()) {
    const size_t end = sse.find("\n\n", at);
    EXPECT_NE(end, std::string::npos) << sse.substr(at);
    if (end == std::string::npos) break;
    const std::string e = sse.substr(at, end - at);
    at = end + 2;
    if (e.rfind(":", 0) == 0) continue;
    const size_t nl = e.find('\n');
    EXPECT_EQ(e.rfind("event: ", 0), 0u) << e;
    EXPECT_EQ(e.compare(nl + 1, 6, "data: "), 0) << e;
    out.emplace_back(e.substr(7, nl - 7), nlohmann::json::parse(e.substr(nl + 7)));
  }
  return out;
}

}  // namespace qrun::test
