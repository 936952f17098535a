// OpenAI request bodies (/v1/chat/completions, /v1/completions, /v1/embeddings) read into
// validated structs: every field type- and range-checked, anything wrong an ApiError 400
// naming the field. No HTTP and no model here, so it can be fuzzed alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qrun/chat_template.h"

namespace qrun::server {

enum class Endpoint { ChatCompletions, Completions };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completions
  std::vector<int32_t> prompt_ids;    // completions: a prompt given as token ids, used as they are
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  std::optional<int> max_tokens;      // absent: until EOS or the context is full
  float temperature = 1.0f;           // OpenAI's defaults
  float top_p = 1.0f;
  int top_k = 0;                      // extensions llama.cpp's server also takes
  float min_p = 0.0f;
  float repeat_penalty = 1.0f;
  float frequency_penalty = 0.0f;     // OpenAI's, -2..2
  float presence_penalty = 0.0f;
  // OpenAI's logit_bias ({"id": -100..100}; llama.cpp's [[id, bias]] too, a bias false or
  // -100 banning the token): added to those logits (the range against the vocabulary is
  // the front's check).
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool ignore_eos = false;
  // >= 0: each token's log-probability and this many alternatives (chat: logprobs true and
  // top_logprobs 0-20; completions: logprobs 0-5); -1: none.
  int logprobs = -1;
  bool echo = false;                  // completions: the reply begins with the prompt (and its tokens' logprobs)
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool json_object = false;           // response_format json_object or json_schema
  std::string json_schema;            // the schema's text, in its own key order; "" for any object
  std::string grammar;                // llama.cpp's "grammar": GBNF text; "" for none
  std::string tools;                  // chat: OpenAI's tools list as JSON text in its own key order; "" for none
  // tool_choice: None (tools are described, calls are not read), Auto (the model may call),
  // Required (it must call one, or tool_name when set). Default Auto with tools, else None.
  enum class ToolChoice { None, Auto, Required };
  ToolChoice tool_choice = ToolChoice::None;
  bool offers_tools() const { return tool_choice != ToolChoice::None; }  // to the template, and calls are read
  std::string tool_name;              // Required: the one tool it must call; "" for any
  bool parallel_tool_calls = true;    // false: one call at most
  // chat: whether a <think> block is returned apart as reasoning_content (llama.cpp's
  // "reasoning_format", src/server/reasoning.h); absent: as the server's --reasoning-format.
  std::optional<bool> separate_reasoning;
  std::string chat_template_kwargs;   // llama.cpp's: a JSON object of template variables; "" for none
  std::string model;                  // echoed back
};

// Throws ApiError(400) for malformed JSON, a wrong type, a value out of range or n != 1.
CompletionRequest parse_request(Endpoint endpoint, std::string_view body);

// POST /v1/embeddings: "input" is a string, a list of strings, a list of token ids or a
// list of such lists (each one input; at most kMaxEmbeddingInputs, none empty);
// "encoding_format" "float" (default) or "base64" (little-endian float32s); "dimensions"
// (>= 1; the front checks it against the model's width) keeps the first ones and scales
// them back to unit length, as OpenAI's text-embedding-3 models do.
struct EmbeddingInput {
  std::string text;            // when ids is empty
  std::vector<int32_t> ids;    // used as they are
};
struct EmbeddingRequest {
  std::vector<EmbeddingInput> inputs;
  bool base64 = false;
  std::optional<int> dimensions;
};
inline constexpr size_t kMaxEmbeddingInputs = 2048;  // OpenAI's limit per request
EmbeddingRequest parse_embedding_request(std::string_view body);

// llama.cpp server's POST /tokenize: {"content", "add_special" (false), "parse_special"
// (true), "with_pieces" (false)}.
struct TokenizeRequest {
  std::string content;
  bool add_special = false, parse_special = true, with_pieces = false;
};
TokenizeRequest parse_tokenize_request(std::string_view body);

// POST /detokenize: {"tokens": [ids]}; each id must be below vocab_size.
std::vector<int32_t> parse_detokenize_request(std::string_view body, int32_t vocab_size);

}  // namespace qrun::server
