#include "src/server/llama_completion_request.h"

#include "src/server/body_fields.h"

namespace qrun::server {

namespace {

// The value a field has when the sampler it controls is off.
struct Neutral {
  const char* field;
  double off;
  const char* what;
};
constexpr Neutral kAbsentSamplers[] = {
    {"mirostat", 0, "Mirostat sampling"}, {"typical_p", 1, "locally typical sampling"},
    {"dry_multiplier", 0, "DRY sampling"}, {"xtc_probability", 0, "XTC sampling"},
    {"tfs_z", 1, "tail-free sampling"},    {"n_probs", 0, "token probabilities here (/v1/completions' logprobs has them)"},
};

std::string openai_body(std::string_view text) {
  const OrderedJson body = parse_body_object(text);
  OrderedJson openai = {{"temperature", 0.8}, {"top_k", 40}, {"top_p", 0.95}, {"min_p", 0.05}};
  copy_shared_fields(body, openai, {"prompt", "stop", "logit_bias"});
  openai.erase("reasoning_format");  // a chat field; /completion returns the text as generated
  for (const Neutral& n : kAbsentSamplers)
    if (const OrderedJson* v = find_field(body, n.field)) {
      if (!v->is_number()) bad_field(n.field, "must be a number");
      if (v->get<double>() != n.off) bad_field(n.field, std::string("asks for ") + n.what + ", which qrun does not have");
    }
  const OrderedJson* n_predict = find_field(body, "n_predict");
  if (!n_predict) n_predict = find_field(body, "max_tokens");
  if (n_predict) {
    if (!n_predict->is_number_integer()) bad_field("n_predict", "must be an integer (-1: no limit)");
    if (n_predict->get<int64_t>() >= 0) openai["max_tokens"] = *n_predict;
    else if (n_predict->get<int64_t>() != -1) bad_field("n_predict", "must be -1 (no limit) or a count of tokens");
  }
  if (const OrderedJson* seed = find_field(body, "seed"); seed && seed->is_number_integer() && seed->get<int64_t>() == -1)
    openai.erase("seed");  // llama.cpp's "random seed"
  if (const OrderedJson* schema = find_field(body, "json_schema")) {
    if (!schema->is_object()) bad_field("json_schema", "must be a JSON schema object");
    openai["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "output"}, {"schema", *schema}}}};
  }
  return dump_body(openai);
}

}  // namespace

CompletionRequest parse_llama_completion_request(std::string_view body) {
  return parse_translated(Endpoint::Completions, openai_body(body),
                          {{"response_format.json_schema.schema", "json_schema"}, {"max_tokens", "n_predict"}});
}

}  // namespace qrun::server
