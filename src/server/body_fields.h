// Reading the JSON bodies of the APIs qserve translates into OpenAI's chat request
// (Anthropic's Messages, OpenAI's Responses): keys in the client's order (schemas and
// template variables reach the model as written), every refusal an ApiError(400) that
// names the field as the client's API spells it.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/runtime/json_schema_grammar.h"
#include "src/server/api_error.h"

namespace qrun::server {

using OrderedJson = nlohmann::ordered_json;

[[noreturn]] inline void bad_field(const std::string& field, const std::string& why) {
  throw ApiError(400, "'" + field + "' " + why, field);
}

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

inline std::string dump_body(const OrderedJson& body) { return body.dump(-1, ' ', false, OrderedJson::error_handler_t::replace); }

}  // namespace qrun::server
