#include "src/server/tool_calls.h"

#include <optional>

#include "src/runtime/json_schema_grammar.h"

namespace qrun::server {

namespace {

using ordered = nlohmann::ordered_json;

constexpr std::string_view kToolCallClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";  // Llama 3.1's start of a call
constexpr std::string_view kSpace = " \t\r\n";

std::string_view without_leading_space(std::string_view s) {
  const size_t a = s.find_first_not_of(kSpace);
  return a == std::string_view::npos ? std::string_view() : s.substr(a);
}

std::string_view trimmed(std::string_view s) {
  const size_t a = s.find_first_not_of(kSpace);
  if (a == std::string_view::npos) return {};
  return s.substr(a, s.find_last_not_of(kSpace) - a + 1);
}

// {"name": "f", "arguments": {...}}; Llama-style "parameters" and arguments written as a
// JSON string are read too. Past a template's depth it is not a call (and copying or
// dumping deeper JSON would recurse that deep).
std::optional<ToolCall> read_call(std::string_view block) {
  constexpr size_t kMaxDepth = 64;
  const ordered j = ordered::parse(trimmed(block), nullptr, false);
  if (json_depth(j, kMaxDepth) > kMaxDepth) return std::nullopt;
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || j["name"].get_ref<const std::string&>().empty())
    return std::nullopt;
  const char* key = j.contains("arguments") ? "arguments" : "parameters";
  if (!j.contains(key)) return std::nullopt;
  ordered args = j[key];
  if (args.is_string()) args = ordered::parse(args.get<std::string>(), nullptr, false);
  if (!args.is_object() || json_depth(args, kMaxDepth) > kMaxDepth) return std::nullopt;
  return ToolCall{"", j["name"].get<std::string>(), args.dump(-1, ' ', false, ordered::error_handler_t::replace)};
}

// A tool's parameters sit at `at` inside the call's schema: its local references
// ("#", "#/$defs/x") are made to point there. The request checked the depth.
void move_references(ordered& schema, const std::string& at) {
  if (schema.is_array()) {
    for (ordered& x : schema) move_references(x, at);
    return;
  }
  if (!schema.is_object()) return;
  for (auto& [key, value] : schema.items()) {
    if (key == "$ref" && value.is_string() && value.get_ref<const std::string&>().rfind('#', 0) == 0)
      value = "#" + at + value.get<std::string>().substr(1);
    else
      move_references(value, at);
  }
}

// Where a Llama call begins: after whitespace and <|python_tag|>.
std::string_view llama_call_start(std::string_view reply) {
  const std::string_view s = without_leading_space(reply);
  return s.starts_with(kPythonTag) ? without_leading_space(s.substr(kPythonTag.size())) : s;
}

ParsedReply parse_llama_call(std::string_view reply) {
  if (const std::string_view body = llama_call_start(reply); body.starts_with('{'))
    if (std::optional<ToolCall> call = read_call(body)) return {{}, {std::move(*call)}};
  return {std::string(reply), {}};
}

}  // namespace

ToolCallForm tool_call_form(const std::string& tmpl) {
  if (tmpl.find(kToolCallOpen) != std::string::npos) return ToolCallForm::Hermes;
  // Llama 3.x: tool results under an ipython header, calls as {"name", "parameters"}.
  if (tmpl.find("ipython<|end_header_id|>") != std::string::npos && tmpl.find("\"parameters\"") != std::string::npos)
    return ToolCallForm::LlamaJson;
  return ToolCallForm::None;
}

std::string_view required_call_start(ToolCallForm form) {
  return form == ToolCallForm::Hermes ? std::string_view("<tool_call>\n") : std::string_view();
}

ParsedReply parse_tool_calls(std::string_view reply, ToolCallForm form) {
  if (form == ToolCallForm::LlamaJson) return parse_llama_call(reply);
  ParsedReply r;
  std::string text;
  // The whitespace after a call, and at the end, goes with the calls. Text before the
  // first call stays as it is: a stream has sent it.
  bool after_call = false;
  auto add_text = [&](std::string_view piece) {
    if (after_call) {
      const size_t first = piece.find_first_not_of(kSpace);
      piece = first == std::string_view::npos ? std::string_view() : piece.substr(first);
    }
    text += piece;
  };
  size_t at = 0;
  while (at < reply.size()) {
    const size_t open = reply.find(kToolCallOpen, at);
    if (open == std::string_view::npos) {
      add_text(reply.substr(at));
      break;
    }
    const size_t body = open + kToolCallOpen.size();
    const size_t close = reply.find(kToolCallClose, body);
    const size_t end = close == std::string_view::npos ? reply.size() : close + kToolCallClose.size();
    const std::optional<ToolCall> call =
        read_call(reply.substr(body, close == std::string_view::npos ? std::string_view::npos : close - body));
    add_text(reply.substr(at, (call ? open : end) - at));
    if (call) r.calls.push_back(*call);
    after_call = call.has_value();
    at = end;
  }
  if (r.calls.empty()) {
    r.content = std::string(reply);
  } else {
    const size_t last = text.find_last_not_of(kSpace);
    r.content = last == std::string::npos ? std::string() : text.substr(0, last + 1);
  }
  return r;
}

size_t plain_text_length(std::string_view reply) {
  if (const size_t open = reply.find(kToolCallOpen); open != std::string_view::npos) return open;
  for (size_t k = std::min(reply.size(), kToolCallOpen.size() - 1); k > 0; --k)
    if (reply.substr(reply.size() - k) == kToolCallOpen.substr(0, k)) return reply.size() - k;
  return reply.size();
}

std::string ToolCallStream::feed(std::string_view text) {
  reply_ += text;
  if (in_call_) return {};
  if (form_ == ToolCallForm::LlamaJson && !plain_) {
    // A call is the whole reply: hold it while it may be one.
    const std::string_view start = llama_call_start(reply_);
    if (start.empty() || (start.size() < kPythonTag.size() && kPythonTag.starts_with(start))) return {};
    in_call_ = start.starts_with('{') || start.starts_with(kPythonTag);
    plain_ = !in_call_;
    if (in_call_) return {};
  }
  const std::string_view unsent = std::string_view(reply_).substr(sent_);
  const size_t plain = plain_text_length(unsent);
  in_call_ = unsent.compare(plain, kToolCallOpen.size(), kToolCallOpen) == 0;
  std::string out(unsent.substr(0, plain));
  sent_ += plain;
  return out;
}

ParsedReply ToolCallStream::finish() const {
  ParsedReply r = parse_tool_calls(reply_, form_);
  // What was sent is the start of the content: the text before the first block.
  r.content = r.content.size() > sent_ ? r.content.substr(sent_) : std::string();
  return r;
}

std::string tool_call_schema(const ordered& tools, const std::string& only, ToolCallForm form) {
  const char* key = form == ToolCallForm::LlamaJson ? "parameters" : "arguments";
  ordered calls = ordered::array();
  size_t count = 0;
  for (const ordered& tool : tools) {
    const std::string& name = tool.at("function").at("name").get_ref<const std::string&>();
    count += only.empty() || name == only;
  }
  for (const ordered& tool : tools) {
    const ordered& function = tool.at("function");
    const std::string& name = function.at("name").get_ref<const std::string&>();
    if (!only.empty() && name != only) continue;
    ordered arguments = function.contains("parameters") ? function["parameters"] : ordered::object();
    // No parameters, or {}: a function of none, as OpenAI reads it.
    if (arguments.empty()) arguments = {{"type", "object"}, {"additionalProperties", false}};
    move_references(arguments, (count == 1 ? "" : "/anyOf/" + std::to_string(calls.size())) + "/properties/" + key);
    calls.push_back({{"type", "object"},
                     {"properties", {{"name", {{"const", name}}}, {key, std::move(arguments)}}},
                     {"required", {"name", key}},
                     {"additionalProperties", false}});
  }
  const ordered schema = calls.size() == 1 ? calls[0] : ordered{{"anyOf", calls}};
  return schema.dump(-1, ' ', false, ordered::error_handler_t::replace);
}

}  // namespace qrun::server
