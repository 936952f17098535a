// Reading the JSON bodies of the APIs qserve translates into OpenAI's chat request
// (Anthropic's Messages, OpenAI's Responses): keys in the client's order (schemas and
// template variables reach the model as written), every refusal an ApiError(400) that
// names the field as the client's API spells it.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/runtime/json_schema_grammar.h"
#include "src/server/api_error.h"
#include "src/server/request.h"

namespace qrun::server {

using OrderedJson = nlohmann::ordered_json;

// Deeper bodies are refused before anything copies or dumps them (both recurse); the
// OpenAI reader then holds schemas (128) and template values (64) to their own limits.
inline constexpr size_t kMaxBodyDepth = 136;

inline OrderedJson parse_body_object(std::string_view text) {
  OrderedJson body;
  try {
    body = OrderedJson::parse(text.begin(), text.end());
  } catch (const OrderedJson::exception& e) {
    throw ApiError(400, std::string("malformed JSON body: ") + e.what());
  }
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  if (json_depth(body, kMaxBodyDepth) > kMaxBodyDepth)
    throw ApiError(400, "the request body nests deeper than " + std::to_string(kMaxBodyDepth) + " levels");
  return body;
}

// The value of `key`, or null when it is absent or null.
inline const OrderedJson* find_field(const OrderedJson& object, const char* key) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// `object`'s string `key`, named `field`.`key` when it is missing or not a string.
inline std::string string_field(const OrderedJson& object, const char* key, const std::string& field) {
  const OrderedJson* v = find_field(object, key);
  if (!v || !v->is_string()) bad_field(field.empty() ? key : field + "." + key, "must be a string");
  return v->get<std::string>();
}

// The chat reader's refusal of a translated body, its field renamed as the client's API
// spells it: each (chat name, their name) pair replaces a part of the field's name.
[[noreturn]] inline void rethrow_renamed(const ApiError& e, const std::vector<std::pair<std::string, std::string>>& names) {
  std::string param = e.param, message = e.what();
  for (const auto& [chat, theirs] : names)
    if (const size_t at = param.find(chat); at != std::string::npos) {
      param.replace(at, chat.size(), theirs);
      break;
    }
  if (param != e.param && message.rfind("'" + e.param + "'", 0) == 0) message = "'" + param + "'" + message.substr(e.param.size() + 2);
  throw ApiError(e.status, message, param);
}

// A translated body (OpenAI's request, as dump_body writes it) read by the OpenAI reader;
// its refusals name the field as the client's API spells it (rethrow_renamed's pairs).
inline CompletionRequest parse_translated(Endpoint endpoint, const std::string& openai,
                                          const std::vector<std::pair<std::string, std::string>>& names) {
  try {
    return parse_request(endpoint, openai);
  } catch (const ApiError& e) {
    rethrow_renamed(e, names);
  }
}

// The fields a translated chat request takes as the client sent them: sampling, stream
// and llama.cpp's extensions, and `own` (the API's fields of the chat API's name and
// meaning). Reasoning comes back apart unless the client says "reasoning_format": "none".
inline void copy_shared_fields(const OrderedJson& body, OrderedJson& chat, std::initializer_list<const char*> own) {
  for (const char* key : {"model", "stream", "temperature", "top_p", "top_k", "seed", "grammar", "min_p", "repeat_penalty",
                          "frequency_penalty", "presence_penalty", "ignore_eos", "reasoning_format"})
    if (const OrderedJson* v = find_field(body, key)) chat[key] = *v;
  for (const char* key : own)
    if (const OrderedJson* v = find_field(body, key)) chat[key] = *v;
  if (!chat.contains("reasoning_format")) chat["reasoning_format"] = "deepseek";
}

// llama.cpp's chat_template_kwargs, as an object to add the API's thinking switch to.
inline OrderedJson template_kwargs(const OrderedJson& body) {
  const OrderedJson* k = find_field(body, "chat_template_kwargs");
  if (!k) return OrderedJson::object();
  if (!k->is_object()) bad_field("chat_template_kwargs", "must be an object of template variables");
  return *k;
}

// A chat API function from a tool `field` with a name, maybe a description and the
// parameters' schema (checked by the chat reader).
inline OrderedJson chat_function(const OrderedJson& tool, const std::string& field, const OrderedJson* parameters) {
  OrderedJson fn = {{"name", string_field(tool, "name", field)}};
  if (const OrderedJson* d = find_field(tool, "description")) {
    if (!d->is_string()) bad_field(field + ".description", "must be a string");
    fn["description"] = *d;
  }
  if (parameters) fn["parameters"] = *parameters;
  return {{"type", "function"}, {"function", std::move(fn)}};
}

inline std::string dump_body(const OrderedJson& body) { return body.dump(-1, ' ', false, OrderedJson::error_handler_t::replace); }

}  // namespace qrun::server
