#include "src/server/logprobs.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace qrun::server {

namespace {

using nlohmann::json;

json token_json(const Tokenizer& tok, const TokenLogprob& t) {
  const std::string text = tok.token_text(t.id, true);
  json bytes = json::array();
  for (const char c : text) bytes.push_back(static_cast<unsigned char>(c));
  return {{"token", text}, {"logprob", t.logprob}, {"bytes", std::move(bytes)}};
}

}  // namespace

SampledLogprobs sampled_logprobs(std::span<const float> logits, int32_t id, int top) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (const float l : logits) sum += std::exp(static_cast<double>(l) - max);
  const double log_sum = max + std::log(sum);
  const auto logprob = [&](int32_t i) {
    const double lp = static_cast<double>(logits[static_cast<size_t>(i)]) - log_sum;
    return std::isfinite(lp) ? std::max(lp, kNoLogprob) : kNoLogprob;
  };
  SampledLogprobs r{{id, logprob(id)}, {}};
  top = std::clamp(top, 0, static_cast<int>(logits.size()));
  if (top == 0) return r;  // no ranking of the whole vocabulary for nothing
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  const auto higher = [&](int32_t a, int32_t b) {
    return logits[size_t(a)] > logits[size_t(b)] || (logits[size_t(a)] == logits[size_t(b)] && a < b);
  };
  std::partial_sort(ids.begin(), ids.begin() + top, ids.end(), higher);
  for (int k = 0; k < top; ++k) r.top.push_back({ids[size_t(k)], logprob(ids[size_t(k)])});
  return r;
}

json chat_logprob_entry(const Tokenizer& tok, const SampledLogprobs& lp) {
  json entry = token_json(tok, lp.chosen);
  json top = json::array();
  for (const TokenLogprob& t : lp.top) top.push_back(token_json(tok, t));
  entry["top_logprobs"] = std::move(top);
  return entry;
}

void LogprobQueue::add(int32_t id, std::span<const float> logits) {
  waiting_.push_back({text_, chat_logprob_entry(tok_, sampled_logprobs(logits, id, top_))});
  text_ += tok_.token_text(id, kept_).size();  // as the reply's decoder reads it
}

json LogprobQueue::take(std::string_view released, bool all) {
  released_ += released.size();
  json out = std::exchange(prompt_, json::array());
  size_t n = 0;
  while (n < waiting_.size() && (all || waiting_[n].start < released_)) out.push_back(std::move(waiting_[n++].entry));
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(n));
  return out;
}

json completion_logprobs(const json& entries, size_t offset) {
  json tokens = json::array(), logprobs = json::array(), tops = json::array(), offsets = json::array();
  for (const json& e : entries) {
    const std::string& token = e.at("token").get_ref<const std::string&>();
    tokens.push_back(token);
    logprobs.push_back(e.at("logprob"));
    json top = e.at("top_logprobs").is_null() ? json(nullptr) : json::object();  // null: a prompt's first token
    if (!top.is_null()) {
      for (const json& t : e.at("top_logprobs")) top[t.at("token").get<std::string>()] = t.at("logprob");
      top[token] = e.at("logprob");
    }
    tops.push_back(std::move(top));
    offsets.push_back(offset);
    offset += e.at("bytes").size();
  }
  return {{"tokens", tokens}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

}  // namespace qrun::server
