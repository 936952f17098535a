// The Jinja subset behind apply_chat_template, in three stages: split the template into
// text and tags (src/jinja_lexer), parse the tags into statements and expressions
// (src/jinja_parser), then walk that tree with Python-like values (src/jinja_renderer,
// src/jinja_value). Semantics follow Jinja2 + transformers wherever a template can tell.
#include "qrun/chat_template.h"

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "src/chat/jinja_renderer.h"

namespace qrun {

using namespace jinja;

namespace {

// JSON as json.loads gives it to a template: objects keep their key order.
Value from_json(const nlohmann::ordered_json& j, int depth = 0) {
  if (depth > kMaxNesting) throw Error("chat template input: JSON nested deeper than " + std::to_string(kMaxNesting) + " levels");
  switch (j.type()) {
    case nlohmann::json::value_t::boolean: return Value::boolean(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return j.get<uint64_t>() > uint64_t(INT64_MAX) ? Value::real(j.get<double>()) : Value::integer(j.get<int64_t>());
    case nlohmann::json::value_t::number_float: return Value::real(j.get<double>());
    case nlohmann::json::value_t::string: return Value::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      List l;
      for (const auto& x : j) l.push_back(from_json(x, depth + 1));
      return Value::of(std::move(l));
    }
    case nlohmann::json::value_t::object: {
      Dict d;
      for (const auto& [k, x] : j.items()) d[k] = from_json(x, depth + 1);
      return Value::of(std::move(d));
    }
    default: return Value::none();
  }
}

Value message_value(const ChatMessage& m) {
  Dict d{{"role", Value::str(m.role)}, {"content", Value::str(m.content)}};
  if (!m.tool_calls.empty()) {
    List calls;
    for (const ToolCall& c : m.tool_calls) {
      const auto args = nlohmann::ordered_json::parse(c.arguments, nullptr, false);
      calls.push_back(Value::of(Dict{
          {"id", Value::str(c.id)},
          {"type", Value::str("function")},
          {"function", Value::of(Dict{{"name", Value::str(c.name)},
                                      {"arguments", args.is_object() ? from_json(args) : Value::str(c.arguments)}})}}));
    }
    d["tool_calls"] = Value::of(std::move(calls));
  }
  if (!m.tool_call_id.empty()) d["tool_call_id"] = Value::str(m.tool_call_id);
  // gpt-oss's template reads an assistant turn's reasoning as `thinking` (its analysis
  // channel, written back before the turn's tool call); the others as reasoning_content.
  if (!m.reasoning_content.empty()) {
    d["reasoning_content"] = Value::str(m.reasoning_content);
    d["thinking"] = Value::str(m.reasoning_content);
  }
  return Value::of(std::move(d));
}

Body parse(const Source& src, const std::string& tmpl) {
  std::vector<Piece> pieces = split_template(src);
  apply_whitespace_rules(pieces, tmpl);
  return parse_template(src, pieces);
}

}  // namespace

void check_chat_template(const std::string& tmpl) { parse(Source(tmpl), tmpl); }

std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const std::string& bos_token,
                                const std::string& eos_token, const std::string& tools_json,
                                const std::string& kwargs_json) {
  const Source src(tmpl);
  const Body body = parse(src, tmpl);

  List msgs;
  for (const ChatMessage& m : messages) msgs.push_back(message_value(m));
  Value tools = Value::none();
  if (!tools_json.empty()) {
    const auto j = nlohmann::ordered_json::parse(tools_json, nullptr, false);
    if (!j.is_array()) throw Error("chat template input: tools must be a JSON list");
    tools = from_json(j);
  }
  Dict globals{{"messages", Value::of(std::move(msgs))},
               {"add_generation_prompt", Value::boolean(add_generation_prompt)},
               {"bos_token", Value::str(bos_token)},
               {"eos_token", Value::str(eos_token)},
               {"tools", std::move(tools)}};
  if (!kwargs_json.empty()) {
    const auto j = nlohmann::ordered_json::parse(kwargs_json, nullptr, false);
    if (!j.is_object()) throw Error("chat template kwargs: must be a JSON object");
    for (const auto& [key, value] : j.items()) {
      if (globals.count(key)) throw Error("chat template kwargs: '" + key + "' is set by qrun, not by kwargs");
      globals[key] = from_json(value);
    }
  }
  return render(src, body, std::move(globals));
}

}  // namespace qrun
