#include "src/server/anthropic_request.h"

#include "src/server/body_fields.h"
#include "src/server/json_text.h"

namespace qrun::server {

using Json = OrderedJson;

namespace {

std::string block_type(const Json& block, const std::string& field) {
  if (!block.is_object()) bad_field(field, "must be a content block (an object with a \"type\")");
  return string_field(block, "type", field);
}

[[noreturn]] void refuse_block(const std::string& type, const std::string& field) {
  if (type == "image" || type == "document")
    bad_field(field, "is " + std::string(type == "image" ? "an image" : "a document") + ": qrun's models read text only");
  bad_field(field + ".type", "'" + type + "' is not a content block qrun reads here");
}

// Text blocks (or a string) as one text, blocks a blank line apart.
std::string text_of(const Json& content, const std::string& field) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad_field(field, "must be a string or a list of text blocks");
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "]";
    const std::string type = block_type(content[i], f);
    if (type != "text") refuse_block(type, f);
    if (!text.empty()) text += "\n\n";
    text += string_field(content[i], "text", f);
  }
  return text;
}

// A user turn: its tool results become tool messages, its text a user message, in order.
void user_turn(const Json& content, const std::string& field, Json& out) {
  if (content.is_string()) {
    out.push_back({{"role", "user"}, {"content", content}});
    return;
  }
  std::string text;
  bool has_text = false;
  auto flush = [&] {
    if (has_text) out.push_back({{"role", "user"}, {"content", text}});
    text.clear();
    has_text = false;
  };
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "]";
    const Json& block = content[i];
    const std::string type = block_type(block, f);
    if (type == "text") {
      if (has_text) text += "\n\n";
      text += string_field(block, "text", f);
      has_text = true;
    } else if (type == "tool_result") {
      flush();
      const std::string id = string_field(block, "tool_use_id", f);
      const Json* result = find_field(block, "content");
      std::string answer = result ? text_of(*result, f + ".content") : std::string();
      if (const Json* e = find_field(block, "is_error")) {
        if (!e->is_boolean()) bad_field(f + ".is_error", "must be true or false");
        if (e->get<bool>()) answer = "Error: " + answer;
      }
      out.push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", answer}});
    } else {
      refuse_block(type, f);
    }
  }
  flush();
}

// An assistant turn: text, thinking (reasoning_content) and tool_use blocks (tool_calls).
void assistant_turn(const Json& content, const std::string& field, Json& out) {
  if (content.is_string()) {
    out.push_back({{"role", "assistant"}, {"content", content}});
    return;
  }
  std::string text, reasoning;
  Json calls = Json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "]";
    const Json& block = content[i];
    const std::string type = block_type(block, f);
    if (type == "text") {
      if (!text.empty()) text += "\n\n";
      text += string_field(block, "text", f);
    } else if (type == "thinking") {
      reasoning += string_field(block, "thinking", f);
    } else if (type == "redacted_thinking") {
      continue;  // encrypted by Anthropic: nothing a local model can read
    } else if (type == "tool_use") {
      const Json* input = find_field(block, "input");
      if (input && !input->is_object()) bad_field(f + ".input", "must be an object");
      calls.push_back({{"id", string_field(block, "id", f)},
                       {"type", "function"},
                       {"function", {{"name", string_field(block, "name", f)}, {"arguments", input ? *input : Json::object()}}}});
    } else {
      refuse_block(type, f);
    }
  }
  Json message = {{"role", "assistant"}, {"content", text}};
  if (!calls.empty()) {
    if (text.empty()) message["content"] = nullptr;
    message["tool_calls"] = std::move(calls);
  }
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  out.push_back(std::move(message));
}

Json chat_messages(const Json& body) {
  Json out = Json::array();
  if (const Json* system = find_field(body, "system")) out.push_back({{"role", "system"}, {"content", text_of(*system, "system")}});
  const Json* messages = find_field(body, "messages");
  if (!messages || !messages->is_array() || messages->empty()) bad_field("messages", "must be a non-empty list of messages");
  for (size_t i = 0; i < messages->size(); ++i) {
    const std::string f = "messages[" + std::to_string(i) + "]";
    const Json& m = (*messages)[i];
    if (!m.is_object()) bad_field(f, "must be an object with \"role\" and \"content\"");
    const std::string role = string_field(m, "role", f);
    const Json* content = find_field(m, "content");
    if (!content || !(content->is_string() || content->is_array()))
      bad_field(f + ".content", "must be a string or a list of content blocks");
    if (role == "user") user_turn(*content, f + ".content", out);
    else if (role == "assistant") assistant_turn(*content, f + ".content", out);
    else bad_field(f + ".role", "must be \"user\" or \"assistant\" (the system prompt is the top-level \"system\")");
  }
  return out;
}

// Custom tools as OpenAI functions; Anthropic's own kinds are left out (see the header).
Json functions(const Json& tools) {
  if (!tools.is_array()) bad_field("tools", "must be a list of tools");
  Json out = Json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string f = "tools[" + std::to_string(i) + "]";
    const Json& t = tools[i];
    if (!t.is_object()) bad_field(f, "must be an object");
    if (const Json* type = find_field(t, "type"); type && *type != "custom") {
      if (!type->is_string()) bad_field(f + ".type", "must be a string");
      continue;
    }
    const Json* schema = find_field(t, "input_schema");
    if (!schema || !schema->is_object()) bad_field(f + ".input_schema", "must be a JSON schema object");
    out.push_back(chat_function(t, f, schema));
  }
  return out;
}

void tool_choice(const Json& choice, Json& openai) {
  if (!choice.is_object()) bad_field("tool_choice", "must be an object with a \"type\"");
  const std::string type = string_field(choice, "type", "tool_choice");
  if (type == "auto") openai["tool_choice"] = "auto";
  else if (type == "any") openai["tool_choice"] = "required";
  else if (type == "none") openai["tool_choice"] = "none";
  else if (type == "tool")
    openai["tool_choice"] = {{"type", "function"}, {"function", {{"name", string_field(choice, "name", "tool_choice")}}}};
  else bad_field("tool_choice.type", "must be \"auto\", \"any\", \"tool\" or \"none\"");
  if (const Json* d = find_field(choice, "disable_parallel_tool_use")) {
    if (!d->is_boolean()) bad_field("tool_choice.disable_parallel_tool_use", "must be true or false");
    openai["parallel_tool_calls"] = !d->get<bool>();
  }
}

// The chat request's body.
std::string chat_body(std::string_view text) {
  const Json body = parse_body_object(text);
  Json openai = {{"messages", chat_messages(body)}};
  copy_shared_fields(body, openai, {"max_tokens"});
  if (const Json* stops = find_field(body, "stop_sequences")) {
    if (!stops->is_array() || stops->size() > 16) bad_field("stop_sequences", "must be a list of at most 16 strings");
    for (const Json& s : *stops)
      if (!s.is_string()) bad_field("stop_sequences", "must be a list of at most 16 strings");
    openai["stop"] = *stops;
  }
  if (const Json* tools = find_field(body, "tools")) openai["tools"] = functions(*tools);
  if (const Json* choice = find_field(body, "tool_choice")) tool_choice(*choice, openai);
  Json kwargs = template_kwargs(body);
  if (const Json* thinking = find_field(body, "thinking")) {
    if (!thinking->is_object()) bad_field("thinking", "must be an object with a \"type\"");
    const std::string type = string_field(*thinking, "type", "thinking");
    if (type != "enabled" && type != "disabled" && type != "adaptive")
      bad_field("thinking.type", "must be \"enabled\", \"adaptive\" or \"disabled\"");
    kwargs["enable_thinking"] = type != "disabled";
  }
  if (!kwargs.empty()) openai["chat_template_kwargs"] = std::move(kwargs);
  if (const Json* format = find_field(body, "output_format")) {
    if (!format->is_object() || format->value("type", Json()) != "json_schema")
      bad_field("output_format", "must be {\"type\": \"json_schema\", \"schema\": {...}}");
    const Json* schema = find_field(*format, "schema");
    if (!schema || !schema->is_object()) bad_field("output_format.schema", "must be a JSON schema object");
    openai["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "output"}, {"schema", *schema}}}};
  }
  return dump_body(openai);
}

}  // namespace

CompletionRequest parse_anthropic_request(std::string_view body) {
  return parse_translated(Endpoint::ChatCompletions, chat_body(body),
                          {{".function.parameters", ".input_schema"},
                           {".function.name", ".name"},
                           {"response_format.json_schema.schema", "output_format.schema"},
                           {"stop", "stop_sequences"}});
}

std::string anthropic_error_body(int status, const std::string& message) {
  const char* type = status == 401   ? "authentication_error"
                     : status == 403 ? "permission_error"
                     : status == 404 ? "not_found_error"
                     : status == 413 ? "request_too_large"
                     : status == 503 ? "overloaded_error"
                     : status >= 500 ? "api_error"
                                     : "invalid_request_error";
  return dump({{"type", "error"}, {"error", {{"type", type}, {"message", message}}}});
}

}  // namespace qrun::server
