// llama.cpp's own POST /completion (and /completions): its body read into OpenAI's text
// completion request, for the clients written against llama-server's native API
// (SillyTavern's llama.cpp mode, scripts, editor plugins). Its field names and defaults:
// n_predict (-1: until EOS or the context is full; max_tokens too), temperature 0.8,
// top_k 40, top_p 0.95, min_p 0.05, seed -1 for a random one, json_schema at the top
// level; its samplers qrun does not have (mirostat, typical_p, DRY, XTC) are refused when
// switched on, and accepted at their neutral values, which clients send.
#pragma once

#include <string_view>

#include "src/server/request.h"

namespace qrun::server {

// Throws ApiError(400) naming the field as llama.cpp spells it.
CompletionRequest parse_llama_completion_request(std::string_view body);

}  // namespace qrun::server
