// libFuzzer target: an OpenAI request body (src/server/request.h) for both endpoints,
// the same bytes as an Anthropic /v1/messages body (src/server/anthropic_request.h) and an
// OpenAI /v1/responses body (src/server/responses_request.h), each read into a chat request,
// as llama.cpp's /completion and /infill bodies (src/server/llama_completion_request.h, infill.h),
// as an /v1/embeddings, a /tokenize and a /detokenize body, and as a model's reply read for
// tool calls (src/server/tool_calls.h), for reasoning (src/server/reasoning.h) and as a
// harmony reply (src/chat/harmony_reply.h), whole and streamed.
// Anything may be refused with an ApiError; nothing may crash, and what is accepted
// must be within the ranges the parser promises.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "src/server/anthropic_request.h"
#include "src/server/api_error.h"
#include "src/server/infill.h"
#include "src/server/llama_completion_request.h"
#include "src/chat/harmony_reply.h"
#include "src/server/reasoning.h"
#include "src/server/request.h"
#include "src/server/responses_request.h"
#include "src/server/tool_calls.h"

namespace {

// A chat request read from another API's body holds what the chat reader promises.
void check_chat(const qrun::server::CompletionRequest& r) {
  if (r.messages.empty() || (r.max_tokens && *r.max_tokens < 0) || r.stop.size() > 16) std::abort();
  for (const qrun::ChatMessage& m : r.messages)
    if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  using namespace qrun::server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (const Endpoint e : {Endpoint::ChatCompletions, Endpoint::Completions}) {
    try {
      const CompletionRequest r = parse_request(e, body);
      if (!(r.temperature >= 0 && r.temperature <= 2) || !(r.top_p >= 0 && r.top_p <= 1) || r.top_k < 0 ||
          (r.max_tokens && *r.max_tokens < 0) || r.stop.size() > 16)
        std::abort();
      if (e == Endpoint::ChatCompletions && r.messages.empty()) std::abort();
      if (r.tool_choice == CompletionRequest::ToolChoice::Required && r.tools.empty()) std::abort();
      if (!r.tool_name.empty() && r.tool_choice != CompletionRequest::ToolChoice::Required) std::abort();
      (void)error_body(400, "x", r.model);
    } catch (const ApiError& err) {
      if (err.status != 400) std::abort();
    }
  }
  try {
    check_chat(parse_anthropic_request(body));
  } catch (const ApiError& err) {
    if (err.status != 400) std::abort();
  }
  try {
    const CompletionRequest r = parse_llama_completion_request(body);
    if (r.endpoint != Endpoint::Completions ||
        (r.max_tokens && *r.max_tokens < 0) || !(r.temperature >= 0 && r.temperature <= 2) || r.stop.size() > 16)
      std::abort();
  } catch (const ApiError& err) {
    if (err.status != 400) std::abort();
  }
  try {
    const InfillRequest r = parse_infill_request(body);
    if (r.completion.max_tokens && *r.completion.max_tokens < 0) std::abort();
  } catch (const ApiError& err) {
    if (err.status != 400) std::abort();
  }
  try {
    check_chat(parse_responses_request(body).chat);
  } catch (const ApiError& err) {
    if (err.status != 400) std::abort();
  }
  try {
    const EmbeddingRequest r = parse_embedding_request(body);
    if (r.inputs.empty() || r.inputs.size() > kMaxEmbeddingInputs || (r.dimensions && *r.dimensions < 1)) std::abort();
    for (const EmbeddingInput& in : r.inputs) {
      if (in.text.empty() == in.ids.empty()) std::abort();  // one of the two, never both
      for (int32_t id : in.ids)
        if (id < 0) std::abort();
    }
  } catch (const ApiError& err) {
    if (err.status != 400) std::abort();
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
  // What a stream sends of a reply is the start of the whole reply's content (the rest is
  // the whitespace that went with the calls), and it finds the same calls.
  for (const ToolCallForm form : {ToolCallForm::Hermes, ToolCallForm::LlamaJson, ToolCallForm::MistralJson,
                                    ToolCallForm::MistralArgs}) {
    const ParsedReply whole = parse_tool_calls(body, form);
    ToolCallStream stream({}, form);
    std::string sent;
    for (size_t at = 0; at < body.size(); at += 3) sent += stream.feed(body.substr(at, 3));
    const ParsedReply last = stream.finish();
    sent += last.content;
    if (sent.compare(0, whole.content.size(), whole.content) != 0 || last.calls.size() != whole.calls.size())
      std::abort();
  }
  // The reasoning and the answer streamed add up to the whole split, from either start,
  // with either tags.
  for (const int run : {0, 1, 2, 3}) {
    const bool inside = run & 1;
    const ThinkTags tags = run & 2 ? kMistralThinkTags : kThinkTags;
    const ReasoningSplit split = split_reasoning(body, inside, tags);
    ReasoningStream reasoning(inside, tags);
    ReasoningSplit streamed;
    for (size_t at = 0; at < body.size(); at += 5) streamed.append(reasoning.feed(body.substr(at, 5)));
    streamed.append(reasoning.finish());
    if (streamed.reasoning != split.reasoning || streamed.content != split.content) std::abort();
  }
  // A harmony reply streamed in pieces reads as the whole does, in each mode.
  for (const int run : {0, 1, 2, 3}) {
    const HarmonyReading how{(run & 1) != 0, (run & 2) != 0};
    const HarmonyReply whole = read_harmony_reply(body, how);
    HarmonyStream stream(how);
    ReasoningSplit streamed;
    for (size_t at = 0; at < body.size(); at += 7) streamed.append(stream.feed(body.substr(at, 7)));
    const HarmonyReply rest = stream.finish();
    streamed.append({rest.reasoning, rest.content});
    if (streamed.reasoning != whole.reasoning || streamed.content != whole.content ||
        rest.calls.size() != whole.calls.size() || (!how.read_calls && !whole.calls.empty()))
      std::abort();
    // Everything stays as written without reasoning apart, but for the calls.
    if (!how.separate_reasoning && !how.read_calls && whole.content != body) std::abort();
  }
  return 0;
}
