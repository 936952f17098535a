// OpenAI Responses API server-sent events as a client reads them: each event's data (its
// name checked against its type, sequence numbers counted from 0), and the response they
// build, as the OpenAI SDKs put a stream together.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "src/server/named_events.h"

namespace qrun::test {

inline std::vector<nlohmann::json> response_events(const std::string& sse) {
  std::vector<nlohmann::json> out;
  for (auto& [name, data] : named_events(sse)) {
    EXPECT_EQ(data["type"], name) << data;
    EXPECT_EQ(data["sequence_number"], out.size()) << data;
    out.push_back(std::move(data));
  }
  return out;
}

// The response the events build; each ".done" event is checked against what the deltas
// built, and the last event's response against the items.
inline nlohmann::json accumulate_response(const std::vector<nlohmann::json>& events) {
  nlohmann::json output = nlohmann::json::array();
  auto item_at = [&](const nlohmann::json& e) -> nlohmann::json& { return output.at(e["output_index"].get<size_t>()); };
  auto part_at = [&](const nlohmann::json& e) -> nlohmann::json& {
    nlohmann::json& item = item_at(e);
    EXPECT_EQ(item["id"], e["item_id"]) << e;
    return item["content"].at(e["content_index"].get<size_t>());
  };
  for (const nlohmann::json& e : events) {
    const std::string type = e["type"];
    if (type == "response.created" || type == "response.in_progress") {
      EXPECT_EQ(e["response"]["status"], "in_progress") << e;
    } else if (type == "response.output_item.added") {
      EXPECT_EQ(e["output_index"], output.size()) << e;
      output.push_back(e["item"]);
    } else if (type == "response.content_part.added") {
      EXPECT_EQ(e["content_index"], item_at(e)["content"].size()) << e;
      item_at(e)["content"].push_back(e["part"]);
    } else if (type == "response.output_text.delta" || type == "response.reasoning_text.delta") {
      nlohmann::json& part = part_at(e);
      part["text"] = part["text"].get<std::string>() + e["delta"].get<std::string>();
    } else if (type == "response.output_text.done" || type == "response.reasoning_text.done") {
      EXPECT_EQ(part_at(e)["text"], e["text"]) << e;
    } else if (type == "response.content_part.done") {
      EXPECT_EQ(part_at(e), e["part"]) << e;
    } else if (type == "response.function_call_arguments.delta") {
      nlohmann::json& item = item_at(e);
      item["arguments"] = item["arguments"].get<std::string>() + e["delta"].get<std::string>();
    } else if (type == "response.function_call_arguments.done") {
      EXPECT_EQ(item_at(e)["arguments"], e["arguments"]) << e;
    } else if (type == "response.output_item.done") {
      nlohmann::json& item = item_at(e);
      item["status"] = e["item"]["status"];
      EXPECT_EQ(item, e["item"]) << e;
    } else if (type == "response.completed" || type == "response.incomplete") {
      EXPECT_EQ(&e, &events.back());
      EXPECT_EQ(e["response"]["output"], output) << e;
      return e["response"];
    } else {
      ADD_FAILURE() << "unexpected event " << e;
    }
  }
  ADD_FAILURE() << "no response.completed or response.incomplete";
  return nullptr;
}

}  // namespace qrun::test
