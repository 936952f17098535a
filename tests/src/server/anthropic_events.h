// Anthropic's server-sent events as a client reads them: each event's name and data,
// and the message they build (as Anthropic's SDKs accumulate a stream).
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "src/server/named_events.h"

namespace qrun::test {

// The events of a stream, each {"event": name, "data": json}.
inline std::vector<nlohmann::json> events_of(const std::string& sse) {
  std::vector<nlohmann::json> out;
  for (auto& [name, data] : named_events(sse)) out.push_back({{"event", name}, {"data", std::move(data)}});
  return out;
}

// The message the events build, as the SDK's stream accumulator does.
inline nlohmann::json accumulate(const std::vector<nlohmann::json>& events) {
  nlohmann::json message;
  std::vector<std::string> partial_json;
  for (const nlohmann::json& e : events) {
    const nlohmann::json& d = e["data"];
    EXPECT_EQ(e["event"], d["type"]) << d;
    const std::string type = d["type"];
    if (type == "message_start") {
      message = d["message"];
    } else if (type == "content_block_start") {
      EXPECT_EQ(d["index"], message["content"].size()) << d;
      message["content"].push_back(d["content_block"]);
      partial_json.emplace_back();
    } else if (type == "content_block_delta") {
      nlohmann::json& block = message["content"].at(d["index"].get<size_t>());
      const nlohmann::json& delta = d["delta"];
      if (delta["type"] == "text_delta") block["text"] = block["text"].get<std::string>() + delta["text"].get<std::string>();
      else if (delta["type"] == "thinking_delta")
        block["thinking"] = block["thinking"].get<std::string>() + delta["thinking"].get<std::string>();
      else if (delta["type"] == "input_json_delta") partial_json[d["index"]] += delta["partial_json"].get<std::string>();
      else ADD_FAILURE() << delta;
    } else if (type == "content_block_stop") {
      nlohmann::json& block = message["content"].at(d["index"].get<size_t>());
      if (block["type"] == "tool_use") block["input"] = nlohmann::json::parse(partial_json[d["index"]]);
    } else if (type == "message_delta") {
      message.update(d["delta"]);
      message["usage"].update(d["usage"]);
    } else {
      EXPECT_EQ(type, "message_stop");
      EXPECT_EQ(&e, &events.back());
    }
  }
  return message;
}

}  // namespace qrun::test
