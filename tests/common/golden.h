// ../shared/golden/stories260K/greedy_f32.jsonl: greedy continuations and per-position
// top-5 logits from a float64 reference forward pass (llama.cpp F32 agrees).
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"

namespace qrun::test {

struct GoldenCase {
  std::string prompt;
  std::vector<int32_t> prompt_ids;   // BOS first
  std::vector<int32_t> greedy_ids;   // 100 tokens
  std::string greedy_text;           // the continuation as it appears after the prompt
  std::vector<std::vector<int32_t>> top_ids;      // per position, 5 ids
  std::vector<std::vector<float>> top_logits;     // per position, 5 logits
};

inline std::vector<GoldenCase> load_golden() {
  std::ifstream in(shared_dir() / "golden/stories260K/greedy_f32.jsonl");
  std::vector<GoldenCase> out;
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    GoldenCase c;
    c.prompt = j["prompt"];
    c.prompt_ids = j["prompt_ids"].get<std::vector<int32_t>>();
    c.greedy_ids = j["greedy_ids"].get<std::vector<int32_t>>();
    c.greedy_text = j["greedy_text"];
    for (const auto& p : j["top5"]) {
      c.top_ids.push_back(p["ids"].get<std::vector<int32_t>>());
      c.top_logits.push_back(p["logits"].get<std::vector<float>>());
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace qrun::test
