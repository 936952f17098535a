#include "src/server/request.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "qrun/grammar_constraint.h"
#include "src/runtime/json_schema_grammar.h"

#include "src/server/api_error.h"
#include "src/server/json_text.h"
#include "src/server/logprobs.h"
#include "src/server/reasoning.h"
#include "src/server/tool_calls.h"

namespace qrun::server {

using nlohmann::json;

std::string error_body(int status, const std::string& message, const std::string& param) {
  const char* type = status == 401   ? "authentication_error"
                     : status == 404 ? "not_found_error"
                     : status == 503 ? "unavailable_error"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  json e = {{"message", message}, {"type", type}, {"code", status}};
  e["param"] = param.empty() ? json(nullptr) : json(param);
  return dump({{"error", e}});
}

namespace {

// JSON that goes to the chat template (tools, call arguments, kwargs) nests at most this
// deep: the template's values do (src/chat/jinja_value.h kMaxNesting, counted from the
// list or object inside the top one).
constexpr size_t kMaxTemplateDepth = 64;
constexpr std::string_view kArgumentsPlace = "/properties/arguments";  // of the parameters in a call's schema

// The body with its keys in the client's order (nlohmann's json sorts them, and schemas,
// tools and template variables reach the model as written): parsed when a field first
// needs it, once.
class OrderedBody {
 public:
  explicit OrderedBody(std::string_view text) : text_(text) {}
  const nlohmann::ordered_json& get() {
    if (!document_) document_ = nlohmann::ordered_json::parse(text_.begin(), text_.end());
    return *document_;
  }

 private:
  std::string_view text_;
  std::optional<nlohmann::ordered_json> document_;
};

double number(const json& body, const char* field, double lo, double hi, double fallback) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number()) bad_field(field, "must be a number");
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi)) bad_field(field, "must be between " + json(lo).dump() + " and " + json(hi).dump());
  return v;
}

int64_t integer(const json& body, const char* field, int64_t lo, int64_t hi, int64_t fallback) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return fallback;
  const std::string range = " between " + std::to_string(lo) + " and " + std::to_string(hi);
  if (!it->is_number_integer()) bad_field(field, "must be an integer" + range);
  const int64_t v = it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : it->get<int64_t>();
  if (v < lo || v > hi) bad_field(field, "must be" + range);
  return v;
}

bool boolean(const json& body, const char* field, bool fallback) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) bad_field(field, "must be true or false");
  return it->get<bool>();
}

// A message's content: a string, or OpenAI's list of parts of which text parts count.
std::string content_text(const json& content, const std::string& field) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return {};
  if (!content.is_array()) bad_field(field, "must be a string or a list of content parts");
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string pf = field + "[" + std::to_string(i) + "]";
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) bad_field(pf, "must be a content part");
    if (part["type"] != "text") bad_field(pf + ".type", "'" + part["type"].get<std::string>() + "' is not supported (text only)");
    if (!part.contains("text") || !part["text"].is_string()) bad_field(pf + ".text", "must be a string");
    text += part["text"].get<std::string>();
  }
  return text;
}

// Features qrun does not have. A request that asks for one gets a 400 naming the field
// rather than an answer without it: a client that asked for logprobs would read null,
// one that asked for the old "functions" would get free text. Fields that ask for
// nothing (false, 0, "", [], {}, null, best_of 1) pass.
void refuse_unsupported(const json& body) {
  auto asks = [&](const char* field) {
    const auto it = body.find(field);
    if (it == body.end() || it->is_null()) return false;
    if (it->is_boolean()) return it->get<bool>();
    if (it->is_number()) return it->get<double>() != 0;
    if (it->is_string()) return !it->get_ref<const std::string&>().empty();
    return !it->empty();  // a list or an object
  };
  for (const char* field : {"suffix", "functions"})
    if (asks(field)) bad_field(field, "is not supported by qrun");
  if (const auto it = body.find("best_of"); it != body.end() && !it->is_null() && *it != 1)
    bad_field("best_of", "must be 1 (one choice per request)");
}

// OpenAI's reasoning_effort reaches the template as the variable gpt-oss's reads
// (reasoning_effort: its system message's "Reasoning: low") and, "none" or not, as the
// switch Qwen3's and SmolLM3's read (enable_thinking), unless chat_template_kwargs set them.
void reasoning_effort(const json& body, Endpoint endpoint, CompletionRequest& r) {
  const auto it = body.find("reasoning_effort");
  if (it == body.end() || it->is_null()) return;
  if (endpoint != Endpoint::ChatCompletions) bad_field("reasoning_effort", "is for /v1/chat/completions");
  static const std::set<std::string> kEfforts = {"none", "minimal", "low", "medium", "high", "xhigh"};
  if (!it->is_string() || !kEfforts.count(it->get<std::string>()))
    bad_field("reasoning_effort", "must be \"none\", \"minimal\", \"low\", \"medium\", \"high\" or \"xhigh\"");
  const std::string& effort = it->get_ref<const std::string&>();
  auto kwargs = r.chat_template_kwargs.empty() ? nlohmann::ordered_json::object()
                                               : nlohmann::ordered_json::parse(r.chat_template_kwargs);
  if (!kwargs.contains("reasoning_effort")) kwargs["reasoning_effort"] = effort;
  if (!kwargs.contains("enable_thinking")) kwargs["enable_thinking"] = effort != "none";
  r.chat_template_kwargs = kwargs.dump(-1, ' ', false, json::error_handler_t::replace);
}

// OpenAI's {"type": "text"}, {"type": "json_object"} and {"type": "json_schema",
// "json_schema": {"name": ..., "schema": {...}}}, and llama.cpp's {"type": "json_object",
// "schema": {...}}. nlohmann's json sorts an object's keys, and the model writes a schema's
// properties in the schema's order, so the schema's text comes from the ordered body.
// A schema outside the subset qrun compiles is a 400 naming it.
void response_format(const json& body, OrderedBody& ordered, CompletionRequest& r) {
  const auto it = body.find("response_format");
  if (it == body.end() || it->is_null()) return;
  const json type = it->is_object() ? it->value("type", json()) : json();
  if (type == "text") return;
  if (type != "json_object" && type != "json_schema")
    bad_field("response_format", "must be {\"type\": \"text\"}, {\"type\": \"json_object\"} or {\"type\": \"json_schema\", "
                           "\"json_schema\": {\"schema\": ...}}");
  r.json_object = true;
  const bool openai = type == "json_schema";
  if (openai) {
    const auto js = it->find("json_schema");
    if (js == it->end() || !js->is_object() || !js->contains("schema"))
      bad_field("response_format.json_schema", "must be an object with the schema under \"schema\"");
  } else if (!it->contains("schema")) {
    return;  // any object
  }
  const char* field = openai ? "response_format.json_schema.schema" : "response_format.schema";
  const auto& format = ordered.get().at("response_format");
  const auto& schema = openai ? format.at("json_schema").at("schema") : format.at("schema");
  if (json_depth(schema, kMaxSchemaDepth) > kMaxSchemaDepth)  // before dump() recurses into it
    bad_field(field, "JSON schema: nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
  r.json_schema = schema.dump();
  try {
    GrammarConstraint::check_schema(r.json_schema);
  } catch (const Error& e) {
    bad_field(field, e.what());
  }
}

std::vector<ToolCall> tool_calls(const json& list, const std::string& field);

std::vector<ChatMessage> messages(const json& body) {
  const auto it = body.find("messages");
  if (it == body.end()) bad_field("messages", "is required");
  if (!it->is_array() || it->empty()) bad_field("messages", "must be a non-empty list");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string f = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) bad_field(f, "must be an object");
    if (!m.contains("role") || !m["role"].is_string()) bad_field(f + ".role", "must be a string");
    const std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant" && role != "developer" && role != "tool")
      bad_field(f + ".role", "must be system, developer, user, assistant or tool");
    ChatMessage msg{role == "developer" ? "system" : role, {}};
    if (role == "assistant" && m.contains("tool_calls") && !m["tool_calls"].is_null())
      msg.tool_calls = tool_calls(m["tool_calls"], f + ".tool_calls");
    if (m.contains("content")) msg.content = content_text(m["content"], f + ".content");
    else if (msg.tool_calls.empty()) bad_field(f + ".content", "is required");
    if (role == "tool" && m.contains("tool_call_id") && !m["tool_call_id"].is_null()) {
      if (!m["tool_call_id"].is_string()) bad_field(f + ".tool_call_id", "must be a string");
      msg.tool_call_id = m["tool_call_id"].get<std::string>();
    }
    if (role == "assistant" && m.contains("reasoning_content") && !m["reasoning_content"].is_null()) {
      if (!m["reasoning_content"].is_string()) bad_field(f + ".reasoning_content", "must be a string");
      msg.reasoning_content = m["reasoning_content"].get<std::string>();
    }
    out.push_back(std::move(msg));
  }
  return out;
}

// An assistant turn's calls: [{"id", "type": "function", "function": {"name", "arguments"}}],
// arguments a JSON text (or, as some clients send them, an object).
std::vector<ToolCall> tool_calls(const json& list, const std::string& field) {
  if (!list.is_array()) bad_field(field, "must be a list of tool calls");
  std::vector<ToolCall> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& c = list[i];
    const std::string f = field + "[" + std::to_string(i) + "]";
    if (!c.is_object()) bad_field(f, "must be an object");
    ToolCall call;
    if (c.contains("id") && !c["id"].is_null()) {
      if (!c["id"].is_string()) bad_field(f + ".id", "must be a string");
      call.id = c["id"].get<std::string>();
    }
    if (c.contains("type") && c["type"] != "function") bad_field(f + ".type", "must be \"function\"");
    if (!c.contains("function") || !c["function"].is_object()) bad_field(f + ".function", "must be an object");
    const json& fn = c["function"];
    if (!fn.contains("name") || !fn["name"].is_string()) bad_field(f + ".function.name", "must be a string");
    call.name = fn["name"].get<std::string>();
    const auto args = fn.find("arguments");
    if (args != fn.end() && args->is_string()) {
      call.arguments = args->get<std::string>();
    } else if (args != fn.end() && args->is_object()) {
      if (json_depth(*args, kMaxTemplateDepth) > kMaxTemplateDepth)  // before dump() recurses into it
        bad_field(f + ".function.arguments", "nested deeper than " + std::to_string(kMaxTemplateDepth) + " levels");
      call.arguments = args->dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      bad_field(f + ".function.arguments", "must be a JSON string (or an object)");
    }
    out.push_back(std::move(call));
  }
  return out;
}

// OpenAI's function names: letters, digits, '_' and '-', 1 to 64 of them.
bool function_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (const char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

// "tools": [{"type": "function", "function": {"name", "description", "parameters"}}] and
// "tool_choice". The list goes to the chat template as the client wrote it (key order
// kept, as for a schema); when a call is required its JSON schema is compiled here, so a
// schema qrun cannot hold a reply to is a 400 naming the tool.
void tools(const json& body, OrderedBody& body_ordered, CompletionRequest& r) {
  const auto it = body.find("tools");
  const bool has_tools = it != body.end() && !it->is_null() && !(it->is_array() && it->empty());
  if (has_tools) {
    if (!it->is_array()) bad_field("tools", "must be a list of {\"type\": \"function\", \"function\": {...}}");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& t = (*it)[i];
      const std::string f = "tools[" + std::to_string(i) + "]";
      if (!t.is_object() || t.value("type", json()) != "function") bad_field(f + ".type", "must be \"function\"");
      if (!t.contains("function") || !t["function"].is_object()) bad_field(f + ".function", "must be an object");
      const json& fn = t["function"];
      if (!fn.contains("name") || !fn["name"].is_string() || !function_name(fn["name"].get<std::string>()))
        bad_field(f + ".function.name", "must be 1 to 64 letters, digits, '_' or '-'");
      if (fn.contains("description") && !fn["description"].is_string() && !fn["description"].is_null())
        bad_field(f + ".function.description", "must be a string");
      if (fn.contains("parameters") && !fn["parameters"].is_object())
        bad_field(f + ".function.parameters", "must be a JSON schema object");
      // Arguments are named: an object, as OpenAI requires ({} is a function of none).
      if (fn.contains("parameters") && !fn["parameters"].empty() && fn["parameters"].value("type", json()) != "object" &&
          !(fn["parameters"].contains("properties") && !fn["parameters"].contains("type")))
        bad_field(f + ".function.parameters", "must be an object schema (\"type\": \"object\"): arguments are named");
      for (size_t k = 0; k < i; ++k)
        if ((*it)[k]["function"]["name"] == fn["name"]) bad_field(f + ".function.name", "names a second tool '" + fn["name"].get<std::string>() + "'");
    }
  }
  using Choice = CompletionRequest::ToolChoice;
  r.tool_choice = has_tools ? Choice::Auto : Choice::None;
  if (const auto c = body.find("tool_choice"); c != body.end() && !c->is_null()) {
    if (*c == "none") r.tool_choice = Choice::None;
    else if (*c == "auto") r.tool_choice = has_tools ? Choice::Auto : Choice::None;
    else if (*c == "required") r.tool_choice = Choice::Required;
    else if (c->is_object() && c->value("type", json()) == "function" && c->contains("function") &&
             (*c)["function"].is_object() && (*c)["function"].value("name", json()).is_string() &&
             !(*c)["function"]["name"].get_ref<const std::string&>().empty()) {
      r.tool_choice = Choice::Required;
      r.tool_name = (*c)["function"]["name"].get<std::string>();
    } else {
      bad_field("tool_choice", "must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
    if (r.tool_choice == Choice::Required && !has_tools) bad_field("tool_choice", "asks for a tool call but no tools are given");
  }
  r.parallel_tool_calls = boolean(body, "parallel_tool_calls", true);
  if (!has_tools) return;
  // A reference into the document: copying or dumping the list recurses, so its depth is
  // checked first.
  const auto& ordered = body_ordered.get().at("tools");
  if (json_depth(ordered, kMaxTemplateDepth) > kMaxTemplateDepth)
    bad_field("tools", "nested deeper than " + std::to_string(kMaxTemplateDepth) + " levels (a chat template's limit)");
  r.tools = ordered.dump(-1, ' ', false, json::error_handler_t::replace);
  if (r.tool_choice != Choice::Required) return;
  bool named = r.tool_name.empty();
  for (size_t i = 0; i < ordered.size(); ++i) {
    const std::string& name = ordered[i]["function"]["name"].get_ref<const std::string&>();
    if (!r.tool_name.empty() && name != r.tool_name) continue;
    named = true;
    try {
      GrammarConstraint::check_schema(tool_call_schema(nlohmann::ordered_json::array({ordered[i]}), ""));
    } catch (const Error& e) {
      // Its places are within the call's schema: said as places within the parameters.
      std::string what = e.what();
      if (const size_t at = what.find(kArgumentsPlace); at != std::string::npos) what.erase(at, kArgumentsPlace.size());
      bad_field("tools[" + std::to_string(i) + "].function.parameters", what);
    }
  }
  if (!named) bad_field("tool_choice", "names '" + r.tool_name + "', which is not among the tools");
}

std::vector<std::string> stops(const json& body) {
  const auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return {};
  if (it->is_string()) return {it->get<std::string>()};
  if (!it->is_array() || it->size() > 16) bad_field("stop", "must be a string or a list of at most 16 strings");
  std::vector<std::string> out;
  for (const json& s : *it) {
    if (!s.is_string()) bad_field("stop", "must be a string or a list of at most 16 strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

json object_body(std::string_view text) {
  json body;
  try {
    body = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 5e10151
    throw ApiError(400, std::string("malformed JSON body: ") + e.what());
  }
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return body;
}

// A prompt given as token ids (the range against the vocabulary is the front's check).
std::vector<int32_t> token_ids(const json& list, const std::string& field) {
  std::vector<int32_t> ids;
  for (const json& v : list) {
    const int64_t id = !v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT32_MAX))
                           ? -1
                           : v.get<int64_t>();
    if (id < 0 || id > INT32_MAX) bad_field(field, "token id " + v.dump() + " out of range");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// OpenAI's {"15043": 10, "50256": -100} or llama.cpp's [[15043, 10], [50256, false]]: a
// bias of -100 or false bans the token (as OpenAI's -100 in effect does), others are added.
std::vector<std::pair<int32_t, float>> logit_bias(const json& body) {
  std::vector<std::pair<int32_t, float>> out;
  const auto it = body.find("logit_bias");
  if (it == body.end() || it->is_null()) return out;
  const auto add = [&](int64_t id, const json& bias, const std::string& at) {
    if (id < 0 || id > INT32_MAX) bad_field("logit_bias", at + ": not a token id");
    if (bias == false) {
      out.emplace_back(static_cast<int32_t>(id), -INFINITY);
      return;
    }
    if (!bias.is_number() || !(bias.get<double>() >= -100 && bias.get<double>() <= 100))
      bad_field("logit_bias", at + ": the bias must be a number from -100 to 100, or false");
    const double b = bias.get<double>();
    out.emplace_back(static_cast<int32_t>(id), b <= -100 ? -INFINITY : static_cast<float>(b));
  };
  if (it->is_object()) {
    for (const auto& [key, bias] : it->items()) {
      const bool digits = !key.empty() && key.size() <= 10 && key.find_first_not_of("0123456789") == std::string::npos;
      add(digits ? std::stoll(key) : -1, bias, "key \"" + key.substr(0, 20) + "\"");
    }
  } else if (it->is_array()) {
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      const std::string at = "item " + std::to_string(i);
      if (!e.is_array() || e.size() != 2 || !e[0].is_number_integer()) bad_field("logit_bias", at + ": must be [token id, bias]");
      add(e[0].is_number_unsigned() && e[0].get<uint64_t>() > uint64_t(INT32_MAX) ? -1 : e[0].get<int64_t>(), e[1], at);
    }
  } else {
    bad_field("logit_bias", "must be an object of token ids to biases (or a list of [id, bias])");
  }
  if (out.size() > 1024) bad_field("logit_bias", "biases at most 1024 tokens");
  return out;
}

}  // namespace

EmbeddingRequest parse_embedding_request(std::string_view text) {
  const json body = object_body(text);
  EmbeddingRequest r;
  const auto it = body.find("input");
  if (it == body.end() || it->is_null()) bad_field("input", "is required: a string, a list of strings or of token ids");
  const std::string shapes = "must be a non-empty string, a list of them, a list of token ids or a list of such lists";
  auto add = [&](const json& v, const std::string& field) {
    EmbeddingInput in;
    if (v.is_string()) in.text = v.get<std::string>();
    else if (v.is_array() && !v.empty() && v[0].is_number()) in.ids = token_ids(v, field);
    else bad_field(field, shapes);
    if (in.text.empty() && in.ids.empty()) bad_field(field, "is empty: " + shapes);
    r.inputs.push_back(std::move(in));
  };
  if (it->is_array() && !it->empty() && (*it)[0].is_number()) {
    add(*it, "input");
  } else if (it->is_array() && !it->empty()) {
    if (it->size() > kMaxEmbeddingInputs)
      bad_field("input", "holds " + std::to_string(it->size()) + " inputs; at most " + std::to_string(kMaxEmbeddingInputs));
    for (size_t i = 0; i < it->size(); ++i) add((*it)[i], "input[" + std::to_string(i) + "]");
  } else {
    add(*it, "input");
  }
  if (const auto f = body.find("encoding_format"); f != body.end() && !f->is_null()) {
    if (!f->is_string() || (*f != "float" && *f != "base64")) bad_field("encoding_format", "must be \"float\" or \"base64\"");
    r.base64 = *f == "base64";
  }
  if (const int64_t d = integer(body, "dimensions", 1, 1 << 16, 0); d > 0) r.dimensions = static_cast<int>(d);
  if (const auto m = body.find("model"); m != body.end() && !m->is_null() && !m->is_string())
    bad_field("model", "must be a string");  // any name: the answer names the model served
  return r;
}

TokenizeRequest parse_tokenize_request(std::string_view text) {
  const json body = object_body(text);
  TokenizeRequest r;
  const auto it = body.find("content");
  if (it == body.end()) bad_field("content", "is required: the text to tokenize");
  if (!it->is_string()) bad_field("content", "must be a string");
  r.content = it->get<std::string>();
  r.add_special = boolean(body, "add_special", false);
  r.parse_special = boolean(body, "parse_special", true);
  r.with_pieces = boolean(body, "with_pieces", false);
  return r;
}

std::vector<int32_t> parse_detokenize_request(std::string_view text, int32_t vocab_size) {
  const json body = object_body(text);
  const auto it = body.find("tokens");
  if (it == body.end() || !it->is_array()) bad_field("tokens", "is required: a list of token ids");
  std::vector<int32_t> ids;
  for (const json& v : *it) {
    if (!v.is_number_integer()) bad_field("tokens", "must be a list of integer token ids, not " + v.dump());
    if ((v.is_number_unsigned() && v.get<uint64_t>() >= uint64_t(vocab_size)) || v.get<int64_t>() < 0 ||
        v.get<int64_t>() >= vocab_size)
      bad_field("tokens", "token id " + v.dump() + " is not in the vocabulary (0.." + std::to_string(vocab_size - 1) + ")");
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

CompletionRequest parse_request(Endpoint endpoint, std::string_view text) {
  const json body = object_body(text);
  CompletionRequest r;
  r.endpoint = endpoint;
  try {
    if (endpoint == Endpoint::ChatCompletions) {
      r.messages = messages(body);
    } else {
      const auto it = body.find("prompt");
      if (it == body.end()) bad_field("prompt", "is required");
      const bool ids = it->is_array() && !it->empty() &&
                       std::all_of(it->begin(), it->end(), [](const json& v) { return v.is_number_integer(); });
      if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) r.prompt = (*it)[0].get<std::string>();
      else if (it->is_string()) r.prompt = it->get<std::string>();
      else if (ids) r.prompt_ids = token_ids(*it, "prompt");
      else bad_field("prompt", "must be a string or a list of token ids (one prompt per request)");
    }
    if (const auto it = body.find("model"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) bad_field("model", "must be a string");
      r.model = it->get<std::string>();
    }
    r.stream = boolean(body, "stream", false);
    if (const auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
      if (!it->is_object()) bad_field("stream_options", "must be an object");
      if (!r.stream) bad_field("stream_options", "is only allowed when stream is true");  // as OpenAI answers
      r.include_usage = boolean(*it, "include_usage", false);
    }
    const char* max_field = body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if (const int64_t v = integer(body, max_field, 0, 1 << 24, -1); v >= 0) r.max_tokens = static_cast<int>(v);
    r.temperature = static_cast<float>(number(body, "temperature", 0, 2, 1));
    r.top_p = static_cast<float>(number(body, "top_p", 0, 1, 1));
    r.min_p = static_cast<float>(number(body, "min_p", 0, 1, 0));
    r.top_k = static_cast<int>(integer(body, "top_k", 0, 1 << 24, 0));
    r.repeat_penalty = static_cast<float>(number(body, "repeat_penalty", 0, 100, 1));
    if (!(r.repeat_penalty > 0)) bad_field("repeat_penalty", "must be greater than 0 (1: off)");  // logits / 0
    r.frequency_penalty = static_cast<float>(number(body, "frequency_penalty", -2, 2, 0));
    r.presence_penalty = static_cast<float>(number(body, "presence_penalty", -2, 2, 0));
    r.logit_bias = logit_bias(body);
    r.ignore_eos = boolean(body, "ignore_eos", false);
    if (endpoint == Endpoint::ChatCompletions) {
      const bool wanted = boolean(body, "logprobs", false);
      const int64_t top = integer(body, "top_logprobs", 0, kMaxTopLogprobs, -1);
      if (top > 0 && !wanted) bad_field("top_logprobs", "needs \"logprobs\": true");
      r.logprobs = wanted ? static_cast<int>(std::max<int64_t>(top, 0)) : -1;
      if (boolean(body, "echo", false)) bad_field("echo", "is for /v1/completions");
    } else {
      r.logprobs = static_cast<int>(integer(body, "logprobs", 0, 5, -1));  // the legacy API's count of alternatives
      r.echo = boolean(body, "echo", false);
      if (const auto it = body.find("top_logprobs"); it != body.end() && !it->is_null())
        bad_field("top_logprobs", "is for /v1/chat/completions (here \"logprobs\" is the number of alternatives, 0-5)");
    }
    if (const auto it = body.find("seed"); it != body.end() && !it->is_null()) {
      if (!it->is_number_integer()) bad_field("seed", "must be an integer between -2^63 and 2^64 - 1");
      r.seed = it->is_number_unsigned() ? it->get<uint64_t>() : static_cast<uint64_t>(it->get<int64_t>());
    }
    if (const auto it = body.find("n"); it != body.end() && !it->is_null()) {
      if (!it->is_number_integer() || it->get<int64_t>() != 1) bad_field("n", "must be 1 (one choice per request)");
    }
    r.stop = stops(body);
    refuse_unsupported(body);
    OrderedBody ordered(text);
    response_format(body, ordered, r);
    if (const auto it = body.find("chat_template_kwargs"); it != body.end() && !it->is_null()) {
      if (endpoint != Endpoint::ChatCompletions) bad_field("chat_template_kwargs", "is for /v1/chat/completions");
      if (!it->is_object()) bad_field("chat_template_kwargs", "must be an object of template variables");
      const auto& kwargs = ordered.get().at("chat_template_kwargs");
      if (json_depth(kwargs, kMaxTemplateDepth) > kMaxTemplateDepth)
        bad_field("chat_template_kwargs", "nested deeper than " + std::to_string(kMaxTemplateDepth) + " levels");
      for (const char* reserved : {"messages", "tools", "add_generation_prompt", "bos_token", "eos_token"})
        if (kwargs.contains(reserved)) bad_field("chat_template_kwargs", std::string("cannot set '") + reserved + "'");
      r.chat_template_kwargs = kwargs.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    reasoning_effort(body, endpoint, r);
    if (const auto it = body.find("reasoning_format"); it != body.end() && !it->is_null()) {
      bool separate = true;
      if (!it->is_string() || !parse_reasoning_format(it->get_ref<const std::string&>(), &separate))
        bad_field("reasoning_format", "must be \"deepseek\" (reasoning apart, as reasoning_content), \"auto\" (the same) or \"none\"");
      if (endpoint != Endpoint::ChatCompletions) bad_field("reasoning_format", "is for /v1/chat/completions");
      r.separate_reasoning = separate;
    }
    if (endpoint == Endpoint::ChatCompletions) tools(body, ordered, r);
    else if (body.contains("tools") && !body["tools"].is_null() && !body["tools"].empty())
      bad_field("tools", "is for /v1/chat/completions");
    if (r.tool_choice == CompletionRequest::ToolChoice::Required && r.json_object)
      bad_field("tool_choice", "cannot require a tool call with a JSON response_format");
    if (const auto it = body.find("grammar"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) bad_field("grammar", "must be a string of GBNF rules");
      if (r.json_object) bad_field("grammar", "cannot be combined with a JSON response_format");
      if (r.tool_choice == CompletionRequest::ToolChoice::Required) bad_field("grammar", "cannot be combined with a required tool call");
      r.grammar = it->get<std::string>();
      try {
        GrammarConstraint::check_gbnf(r.grammar);
      } catch (const Error& e) {
        bad_field("grammar", e.what());
      }
    }
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("bad request body: ") + e.what());
  }
  return r;
}

}  // namespace qrun::server
