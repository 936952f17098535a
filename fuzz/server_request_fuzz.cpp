// libFuzzer target: an OpenAI request body (src/server/request.h) for both endpoints,
// and the same bytes as a /tokenize and a /detokenize body.
// Anything may be refused with an ApiError; nothing may crash, and what is accepted
// must be within the ranges the parser promises.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "src/server/api_error.h"
#include "src/server/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun::server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (const Endpoint e : {Endpoint::ChatCompletions, Endpoint::Completions}) {
    try {
      const CompletionRequest r = parse_request(e, body);
      if (!(r.temperature >= 0 && r.temperature <= 2) || !(r.top_p >= 0 && r.top_p <= 1) || r.top_k < 0 ||
          (r.max_tokens && *r.max_tokens < 0) || r.stop.size() > 16)
        std::abort();
      if (e == Endpoint::ChatCompletions && r.messages.empty()) std::abort();
      (void)error_body(400, "x", r.model);
    } catch (const ApiError& err) {
      if (err.status != 400) std::abort();
    }
  }
  try {
    const TokenizeRequest t = parse_tokenize_request(body);
    (void)t;
  } catch (const ApiError& err) {
    if (err.status != 400) std::abort();
  }
  try {
    for (int32_t id : parse_detokenize_request(body, 512))
      if (id < 0 || id >= 512) std::abort();
  } catch (const ApiError& err) {
    if (err.status != 400) std::abort();
  }
  return 0;
}
