// OpenAI's logprobs: each sampled token's log-probability under the model's distribution
// (log-softmax of its logits, as the model gave them: before penalties, temperature and a
// grammar's mask, as OpenAI and llama.cpp's server report them) and the most likely
// tokens at that place, in the shapes of the chat and the completions APIs.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
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

// A reply's entries, each held until the text of its token goes out, so what is sent
// matches the text sent: the tokens a stop string cuts off never go out. An echoed
// prompt's entries go out first.
class LogprobQueue {
 public:
  // kept: special tokens whose text the reply keeps (ReplyText's).
  LogprobQueue(const Tokenizer& tok, int top, std::vector<int32_t> kept = {}) : tok_(tok), top_(top), kept_(std::move(kept)) {}
  void add_prompt(nlohmann::json entries) { prompt_ = std::move(entries); }
  void add(int32_t id, std::span<const float> logits);  // a generated token
  // The entries whose token's text begins within the text released so far (`released`
  // more now); every one when `all`.
  nlohmann::json take(std::string_view released, bool all);

 private:
  struct Waiting {
    size_t start;  // bytes of the reply's text before the token's
    nlohmann::json entry;
  };
  const Tokenizer& tok_;
  int top_;
  std::vector<int32_t> kept_;
  nlohmann::json prompt_ = nlohmann::json::array();
  std::vector<Waiting> waiting_;
  size_t text_ = 0, released_ = 0;  // bytes of the tokens' text so far, of the text released
};

// The completions API's logprobs of chat-shaped entries: {"tokens", "token_logprobs",
// "top_logprobs": [{token: logprob}], "text_offset"}, offsets counted in bytes from
// `offset` (the text the reply had before these entries). top_logprobs holds the chosen
// token too, as OpenAI's does. An entry of null logprob and top_logprobs (an echoed
// prompt's first token) stays null in both.
nlohmann::json completion_logprobs(const nlohmann::json& entries, size_t offset);

}  // namespace qrun::server
