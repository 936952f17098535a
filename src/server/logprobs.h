// OpenAI's logprobs: each sampled token's log-probability under the model's distribution
// (log-softmax of its logits, as the model gave them: before penalties, temperature and a
// grammar's mask, as OpenAI and llama.cpp's server report them) and the most likely
// tokens at that place, in the shapes of the chat and the completions APIs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "qrun/tokenizer.h"

namespace qrun::server {

inline constexpr int kMaxTopLogprobs = 20;   // chat's top_logprobs, as OpenAI allows
inline constexpr double kNoLogprob = -9999;  // what OpenAI reports for an impossible token

struct TokenLogprob {
  int32_t id;
  double logprob;
};

// The log-probability of `id` and the `top` most likely tokens (highest first, ties by
// id), computed in double.
struct SampledLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;
};
SampledLogprobs sampled_logprobs(std::span<const float> logits, int32_t id, int top);

// The chat API's entry: {"token", "logprob", "bytes", "top_logprobs": [{"token",
// "logprob", "bytes"}]}; a token's text is its bytes (special tokens as written), which
// may be part of a UTF-8 character: "bytes" holds them exactly.
nlohmann::json chat_logprob_entry(const Tokenizer& tok, const SampledLogprobs& lp);

// The completions API's logprobs of chat-shaped entries: {"tokens", "token_logprobs",
// "top_logprobs": [{token: logprob}], "text_offset"}, offsets counted in bytes from
// `offset` (the text the reply had before these entries). An entry of null logprob and
// top_logprobs (an echoed prompt's first token) stays null in both.
nlohmann::json completion_logprobs(const nlohmann::json& entries, size_t offset);

}  // namespace qrun::server
