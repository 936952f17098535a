#include "src/server/llama_completion_reply.h"

#include "src/server/api_error.h"
#include "src/server/json_text.h"

namespace qrun::server {

using json = nlohmann::json;

namespace {

std::string event(const json& j) { return "data: " + dump(j) + "\n\n"; }

double per_second(int n, double ms) { return ms > 0 ? 1000.0 * n / ms : 0.0; }

}  // namespace

LlamaCompletionReply::LlamaCompletionReply(std::string model, std::string prompt)
    : model_(std::move(model)), prompt_(std::move(prompt)) {}

json LlamaCompletionReply::final_object(const std::string& content, const ReplyEnd& end) const {
  const Usage& u = end.usage;
  // llama-server's stop types: "limit" (n_predict or the context), "word" (a stop string), "eos".
  const char* stop_type = end.finish == "length" ? "limit" : end.stop_string.empty() ? "eos" : "word";
  return {{"index", 0},
          {"content", content},
          {"tokens", json::array()},
          {"id_slot", -1},
          {"stop", true},
          {"model", model_},
          {"tokens_predicted", u.completion},
          {"tokens_evaluated", u.prompt},
          {"prompt", prompt_},
          {"has_new_line", content.find('\n') != std::string::npos},
          {"truncated", false},
          {"stop_type", stop_type},
          {"stopping_word", end.stop_string},
          {"tokens_cached", u.prompt + u.completion},
          {"timings",
           {{"cache_n", u.cached},
            {"prompt_n", u.prompt - u.cached},
            {"prompt_ms", end.prompt_ms},
            {"prompt_per_token_ms", u.prompt > u.cached ? end.prompt_ms / (u.prompt - u.cached) : 0.0},
            {"prompt_per_second", per_second(u.prompt - u.cached, end.prompt_ms)},
            {"predicted_n", u.completion},
            {"predicted_ms", end.eval_ms},
            {"predicted_per_token_ms", u.completion > 0 ? end.eval_ms / u.completion : 0.0},
            {"predicted_per_second", per_second(u.completion, end.eval_ms)}}}};
}

json LlamaCompletionReply::whole(const std::string& content, const std::string&, const std::vector<ToolCall>&,
                                 const ReplyEnd& end, const json&) const {
  return final_object(content, end);
}

std::string LlamaCompletionReply::text(const std::string& text, const json&) {
  if (text.empty()) return {};
  return event({{"index", 0}, {"content", text}, {"tokens", json::array()}, {"stop", false}, {"id_slot", -1}});
}

std::string LlamaCompletionReply::close(const std::vector<ToolCall>&, const ReplyEnd& end, const json&) {
  return event(final_object("", end));
}

std::string LlamaCompletionReply::failed(const std::string& message) {
  return event(json::parse(error_body(500, message)));
}

}  // namespace qrun::server
