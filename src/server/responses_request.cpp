#include "src/server/responses_request.h"

#include "src/server/body_fields.h"

namespace qrun::server {

using Json = OrderedJson;

namespace {

// A message's text: a string, or input_text / output_text parts (joined as they are).
std::string text_of(const Json& content, const std::string& field) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad_field(field, "must be a string or a list of content parts");
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string f = field + "[" + std::to_string(i) + "]";
    if (!content[i].is_object()) bad_field(f, "must be a content part");
    const std::string type = string_field(content[i], "type", f);
    if (type == "input_text" || type == "output_text") text += string_field(content[i], "text", f);
    else if (type == "refusal") text += string_field(content[i], "refusal", f);
    else if (type == "input_image" || type == "input_file" || type == "input_audio")
      bad_field(f, "is " + type + ": qrun's models read text only");
    else bad_field(f + ".type", "'" + type + "' is not a content part qrun reads");
  }
  return text;
}

// Builds the chat messages from input items: an assistant's text, reasoning and calls
// become one turn, as the chat API writes it.
class Conversation {
 public:
  Json messages = Json::array();

  void message(const Json& item, const std::string& f) {
    const std::string role = string_field(item, "role", f);
    if (role != "user" && role != "assistant" && role != "system" && role != "developer")
      bad_field(f + ".role", "must be user, assistant, system or developer");
    const Json* content = find_field(item, "content");
    if (!content) bad_field(f + ".content", "is required");
    const std::string text = text_of(*content, f + ".content");
    if (role == "assistant") {
      assistant()["content"] = text;
      open_assistant_ = true;  // the calls that follow are this turn's
    } else {
      messages.push_back({{"role", role == "developer" ? "system" : role}, {"content", text}});
      open_assistant_ = false;
    }
  }

  void function_call(const Json& item, const std::string& f) {
    const Json* arguments = find_field(item, "arguments");
    if (arguments && !arguments->is_string()) bad_field(f + ".arguments", "must be a JSON string");
    Json& turn = open_assistant_ ? messages.back() : assistant();
    open_assistant_ = true;
    if (!turn.contains("tool_calls")) turn["tool_calls"] = Json::array();
    turn["tool_calls"].push_back({{"id", string_field(item, "call_id", f)},
                                  {"type", "function"},
                                  {"function", {{"name", string_field(item, "name", f)},
                                                {"arguments", arguments ? arguments->get<std::string>() : "{}"}}}});
  }

  void function_call_output(const Json& item, const std::string& f) {
    const Json* output = find_field(item, "output");
    if (!output) bad_field(f + ".output", "is required");
    messages.push_back({{"role", "tool"}, {"tool_call_id", string_field(item, "call_id", f)},
                        {"content", text_of(*output, f + ".output")}});
    open_assistant_ = false;
  }

  // Its text, or else its summary's, goes with the next assistant turn.
  void reasoning(const Json& item, const std::string& f) {
    std::string text;
    for (const char* key : {"content", "summary"}) {
      const Json* parts = find_field(item, key);
      if (!parts) continue;
      if (!parts->is_array()) bad_field(f + "." + key, "must be a list of parts");
      for (size_t i = 0; i < parts->size(); ++i) {
        const std::string pf = f + "." + key + "[" + std::to_string(i) + "]";
        if (!(*parts)[i].is_object()) bad_field(pf, "must be a part with text");
        text += string_field((*parts)[i], "text", pf);
      }
      if (!text.empty()) break;
    }
    reasoning_ += text;
  }

 private:
  // A new assistant turn, carrying the reasoning that came before it.
  Json& assistant() {
    messages.push_back({{"role", "assistant"}, {"content", nullptr}});
    if (!reasoning_.empty()) messages.back()["reasoning_content"] = reasoning_;
    reasoning_.clear();
    return messages.back();
  }

  std::string reasoning_;
  bool open_assistant_ = false;  // the last message is an assistant turn that calls may join
};

Json chat_messages(const Json& body) {
  Conversation c;
  if (const Json* instructions = find_field(body, "instructions")) {
    if (!instructions->is_string()) bad_field("instructions", "must be a string");
    c.messages.push_back({{"role", "system"}, {"content", *instructions}});
  }
  const Json* input = find_field(body, "input");
  if (!input || !(input->is_string() || (input->is_array() && !input->empty())))
    bad_field("input", "must be a string or a non-empty list of items");
  if (input->is_string()) {
    c.messages.push_back({{"role", "user"}, {"content", *input}});
    return c.messages;
  }
  for (size_t i = 0; i < input->size(); ++i) {
    const std::string f = "input[" + std::to_string(i) + "]";
    const Json& item = (*input)[i];
    if (!item.is_object()) bad_field(f, "must be an item (an object)");
    const Json* type = find_field(item, "type");
    if (type && !type->is_string()) bad_field(f + ".type", "must be a string");
    const std::string kind = type ? type->get<std::string>() : "message";
    if (kind == "message") c.message(item, f);
    else if (kind == "function_call") c.function_call(item, f);
    else if (kind == "function_call_output") c.function_call_output(item, f);
    else if (kind == "reasoning") c.reasoning(item, f);
    else if (kind == "item_reference") bad_field(f, "refers to a stored item: qserve keeps none (send the items)");
    else bad_field(f + ".type", "'" + kind + "' is not an item qrun reads");
  }
  return c.messages;
}

// Function tools as the chat API's; hosted tools are left out (see the header).
Json functions(const Json& tools) {
  if (!tools.is_array()) bad_field("tools", "must be a list of tools");
  Json out = Json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string f = "tools[" + std::to_string(i) + "]";
    const Json& t = tools[i];
    if (!t.is_object()) bad_field(f, "must be an object");
    if (string_field(t, "type", f) == "function") out.push_back(chat_function(t, f, find_field(t, "parameters")));
  }
  return out;
}

Json tool_choice(const Json& choice) {
  if (choice == "auto" || choice == "none" || choice == "required") return choice;
  if (choice.is_object() && choice.value("type", Json()) == "function")
    return {{"type", "function"}, {"function", {{"name", string_field(choice, "name", "tool_choice")}}}};
  bad_field("tool_choice", "must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}");
}

Json response_format(const Json& text) {
  if (!text.is_object()) bad_field("text", "must be an object");
  const Json* format = find_field(text, "format");
  if (!format) return nullptr;
  if (!format->is_object()) bad_field("text.format", "must be an object with a \"type\"");
  const std::string type = string_field(*format, "type", "text.format");
  if (type == "text") return nullptr;
  if (type == "json_object") return {{"type", "json_object"}};
  if (type != "json_schema") bad_field("text.format.type", "must be \"text\", \"json_object\" or \"json_schema\"");
  const Json* schema = find_field(*format, "schema");
  if (!schema || !schema->is_object()) bad_field("text.format.schema", "must be a JSON schema object");
  return {{"type", "json_schema"}, {"json_schema", {{"name", format->value("name", "output")}, {"schema", *schema}}}};
}

}  // namespace

ResponsesRequest parse_responses_request(std::string_view text) {
  const Json body = parse_body_object(text);
  for (const char* stored : {"previous_response_id", "conversation"})
    if (find_field(body, stored)) bad_field(stored, "refers to a stored conversation: qserve keeps none (send it whole in \"input\")");
  if (const Json* background = find_field(body, "background"); background && *background != false)
    bad_field("background", "is not supported: qserve answers while the client waits");
  Json chat = {{"messages", chat_messages(body)}};
  copy_shared_fields(body, chat, {"parallel_tool_calls"});
  if (const Json* max = find_field(body, "max_output_tokens")) chat["max_tokens"] = *max;
  if (const Json* tools = find_field(body, "tools")) chat["tools"] = functions(*tools);
  if (const Json* choice = find_field(body, "tool_choice")) chat["tool_choice"] = tool_choice(*choice);
  if (const Json* format = find_field(body, "text")) {
    if (Json f = response_format(*format); !f.is_null()) chat["response_format"] = std::move(f);
  }
  Json kwargs = template_kwargs(body);
  if (const Json* reasoning = find_field(body, "reasoning")) {
    if (!reasoning->is_object()) bad_field("reasoning", "must be an object");
    if (const Json* effort = find_field(*reasoning, "effort")) chat["reasoning_effort"] = *effort;
  }
  if (!kwargs.empty()) chat["chat_template_kwargs"] = std::move(kwargs);

  ResponsesRequest r;
  r.chat = parse_translated(Endpoint::ChatCompletions, dump_body(chat),
                            {{".function.parameters", ".parameters"},
                             {".function.name", ".name"},
                             {"response_format.json_schema.schema", "text.format.schema"},
                             {"max_tokens", "max_output_tokens"},
                             {"reasoning_effort", "reasoning.effort"}});
  // What the response object repeats of the request (parse_request has checked the rest).
  nlohmann::json& e = r.echoed;
  e = nlohmann::json::object();
  auto echo = [&](const char* key, nlohmann::json fallback) {
    const Json* v = find_field(body, key);
    e[key] = v ? nlohmann::json::parse(dump_body(*v)) : std::move(fallback);
  };
  echo("instructions", nullptr);
  echo("max_output_tokens", nullptr);
  echo("metadata", nlohmann::json::object());
  echo("parallel_tool_calls", true);
  echo("temperature", 1.0);
  echo("top_p", 1.0);
  echo("tool_choice", "auto");
  echo("tools", nlohmann::json::array());
  echo("text", {{"format", {{"type", "text"}}}});
  echo("reasoning", {{"effort", nullptr}, {"summary", nullptr}});
  return r;
}

}  // namespace qrun::server
