#include "src/server/tool_calls.h"

#include <optional>

#include "src/runtime/json_schema_grammar.h"
#include "src/chat/harmony_reply.h"
#include "src/chat/reply_scan.h"

namespace qrun::server {

namespace {

using ordered = nlohmann::ordered_json;

constexpr std::string_view kToolCallClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";  // Llama 3.1's start of a call
constexpr std::string_view kToolCallsTag = "[TOOL_CALLS]";  // Mistral's
constexpr std::string_view kArgsTag = "[ARGS]";              // Mistral's, after a call's name
constexpr std::string_view kCallIdTag = "[CALL_ID]";         // Mistral's, between them in some
constexpr size_t kMaxDepth = 64;  // of a call's JSON: past a template's depth it is not a call

// {"name": "f", "arguments": {...}}; Llama-style "parameters" and arguments written as a
// JSON string are read too. The caller checked the depth (copying or dumping deeper JSON
// would recurse that deep).
std::optional<ToolCall> call_of(const ordered& j) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || j["name"].get_ref<const std::string&>().empty())
    return std::nullopt;
  const char* key = j.contains("arguments") ? "arguments" : "parameters";
  if (!j.contains(key)) return std::nullopt;
  ordered args = j[key];
  if (args.is_string()) args = ordered::parse(args.get<std::string>(), nullptr, false);
  if (!args.is_object() || json_depth(args, kMaxDepth) > kMaxDepth) return std::nullopt;
  return ToolCall{"", j["name"].get<std::string>(), args.dump(-1, ' ', false, ordered::error_handler_t::replace)};
}

std::optional<ordered> json_of(std::string_view text) {
  ordered j = ordered::parse(trimmed(text), nullptr, false);
  if (j.is_discarded() || json_depth(j, kMaxDepth) > kMaxDepth) return std::nullopt;
  return j;
}

std::optional<ToolCall> read_call(std::string_view block) {
  const std::optional<ordered> j = json_of(block);
  return j ? call_of(*j) : std::nullopt;
}

std::optional<ToolCall> named_call(std::string_view name, std::string_view arguments) {
  const std::optional<ordered> j = json_of(arguments);
  return j ? call_of(ordered{{"name", std::string(name)}, {"arguments", *j}}) : std::nullopt;
}

// get_weather[ARGS]{"city": "Paris"}, or get_weather[CALL_ID]a1b2c3d4e[ARGS]{...} (the
// server gives calls their own ids).
std::optional<ToolCall> read_named_call(std::string_view block) {
  const size_t args = block.find(kArgsTag);
  if (args == std::string_view::npos) return std::nullopt;
  const std::string_view head = block.substr(0, args);
  const std::string_view name = trimmed(head.substr(0, head.find(kCallIdTag)));
  if (name.find_first_of(" \t\r\n\"{}[]") != std::string_view::npos) return std::nullopt;
  return named_call(name, block.substr(args + kArgsTag.size()));
}

// The forms whose calls are blocks among text: each opens with a tag; Hermes's closes
// with one, the [ARGS] form's runs to the next block or the end.
struct CallBlocks {
  std::string_view open, close;
  std::optional<ToolCall> (*read)(std::string_view);
};
CallBlocks call_blocks(ToolCallForm form) {
  return form == ToolCallForm::MistralArgs ? CallBlocks{kToolCallsTag, {}, read_named_call}
                                           : CallBlocks{kToolCallOpen, kToolCallClose, read_call};
}

bool whole_reply_form(ToolCallForm form) { return form == ToolCallForm::LlamaJson || form == ToolCallForm::MistralJson; }

// A tool's parameters as a schema: none, or {}, is a function of none, as OpenAI reads it.
ordered parameters_of(const ordered& function) {
  ordered p = function.contains("parameters") ? function["parameters"] : ordered::object();
  if (p.empty()) p = {{"type", "object"}, {"additionalProperties", false}};
  return p;
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

// The forms whose calls are the whole reply: Llama's one object, Mistral's list of
// objects, each maybe after its marker token (a control token, which the text of a reply
// leaves out, but a prompt may write).
struct WholeReplyCalls {
  std::string_view marker;
  char open;
};
WholeReplyCalls whole_reply_calls(ToolCallForm form) {
  return form == ToolCallForm::LlamaJson ? WholeReplyCalls{kPythonTag, '{'} : WholeReplyCalls{kToolCallsTag, '['};
}

// Where the calls begin: after whitespace and the marker.
std::string_view calls_start(std::string_view reply, std::string_view marker) {
  const std::string_view s = without_leading_space(reply);
  return s.starts_with(marker) ? without_leading_space(s.substr(marker.size())) : s;
}

ParsedReply parse_whole_reply_calls(std::string_view reply, ToolCallForm form) {
  const WholeReplyCalls w = whole_reply_calls(form);
  const std::string_view body = calls_start(reply, w.marker);
  ParsedReply r{std::string(reply), {}};
  if (!body.starts_with(w.open)) return r;
  const std::optional<ordered> j = json_of(body);
  if (!j) return r;
  std::vector<ToolCall> calls;
  for (const ordered& item : j->is_array() ? *j : ordered::array({*j})) {
    std::optional<ToolCall> call = call_of(item);
    if (!call) return r;  // all calls, or text
    calls.push_back(std::move(*call));
  }
  if (!calls.empty()) r = {{}, std::move(calls)};
  return r;
}

}  // namespace

ToolCallForm tool_call_form(const std::string& tmpl) {
  if (writes_harmony(tmpl)) return tmpl.find("functions.") != std::string::npos ? ToolCallForm::Harmony : ToolCallForm::None;
  if (tmpl.find(kToolCallOpen) != std::string::npos) return ToolCallForm::Hermes;
  if (tmpl.find(kToolCallsTag) != std::string::npos)
    return tmpl.find(kArgsTag) != std::string::npos ? ToolCallForm::MistralArgs : ToolCallForm::MistralJson;
  // Llama 3.x: tool results under an ipython header, calls as {"name", "parameters"}.
  if (tmpl.find("ipython<|end_header_id|>") != std::string::npos && tmpl.find("\"parameters\"") != std::string::npos)
    return ToolCallForm::LlamaJson;
  return ToolCallForm::None;
}

std::string_view required_call_start(ToolCallForm form) {
  return form == ToolCallForm::Hermes                                            ? std::string_view("<tool_call>\n")
         : form == ToolCallForm::MistralJson || form == ToolCallForm::MistralArgs ? kToolCallsTag
         : form == ToolCallForm::Harmony                                          ? kHarmonyCallStart
                                                                                 : std::string_view();
}

std::vector<std::string_view> call_markers(ToolCallForm form) {
  if (form == ToolCallForm::MistralArgs) return {kToolCallsTag, kCallIdTag, kArgsTag};
  return {};
}

ParsedReply parse_tool_calls(std::string_view reply, ToolCallForm form) {
  if (whole_reply_form(form)) return parse_whole_reply_calls(reply, form);
  const CallBlocks blocks = call_blocks(form);
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
    const size_t open = reply.find(blocks.open, at);
    if (open == std::string_view::npos) {
      add_text(reply.substr(at));
      break;
    }
    const size_t body = open + blocks.open.size();
    // Without a closing tag the next block's opening ends this one (and stays).
    const size_t close = reply.find(blocks.close.empty() ? blocks.open : blocks.close, body);
    const size_t end = close == std::string_view::npos ? reply.size() : close + blocks.close.size();
    const std::optional<ToolCall> call =
        blocks.read(reply.substr(body, close == std::string_view::npos ? std::string_view::npos : close - body));
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

size_t plain_text_length(std::string_view reply, ToolCallForm form) {
  const std::string_view open = call_blocks(form).open;
  if (const size_t at = reply.find(open); at != std::string_view::npos) return at;
  return reply.size() - partial_tag_at_end(reply, open);
}

ToolCallStream::ToolCallStream(std::string start, ToolCallForm form)
    : form_(form), reply_(std::move(start)), sent_(reply_.size()),
      in_call_(!whole_reply_form(form) && reply_.find(call_blocks(form).open) != std::string::npos) {}

std::string ToolCallStream::feed(std::string_view text) {
  reply_ += text;
  if (in_call_) return {};
  if (whole_reply_form(form_) && !plain_) {
    // The calls are the whole reply: hold it while it may be them.
    const WholeReplyCalls w = whole_reply_calls(form_);
    const std::string_view start = calls_start(reply_, w.marker);
    if (start.empty() || (start.size() < w.marker.size() && w.marker.starts_with(start))) return {};
    in_call_ = start.starts_with(w.open) || start.starts_with(w.marker);
    plain_ = !in_call_;
    if (in_call_) return {};
  }
  const std::string_view unsent = std::string_view(reply_).substr(sent_);
  if (plain_) {  // a reply that began as text has no calls
    sent_ = reply_.size();
    return std::string(unsent);
  }
  const size_t plain = plain_text_length(unsent, form_);
  const std::string_view open = call_blocks(form_).open;
  in_call_ = unsent.compare(plain, open.size(), open) == 0;
  // Whitespace before a call goes with the call (parse_tool_calls drops it): it waits
  // for the text that follows it.
  const size_t n = without_trailing_space(unsent.substr(0, plain)).size();
  sent_ += n;
  return std::string(unsent.substr(0, n));
}

ParsedReply ToolCallStream::finish() const {
  ParsedReply r = parse_tool_calls(reply_, form_);
  // What was sent is the start of the content: the text before the first block.
  r.content = r.content.size() > sent_ ? r.content.substr(sent_) : std::string();
  return r;
}

std::string tool_call_schema(const ordered& tools, const std::string& only, ToolCallForm form, bool parallel) {
  const bool list = form == ToolCallForm::MistralJson;
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
    ordered arguments = parameters_of(function);
    move_references(arguments, std::string(list ? "/items" : "") + (count == 1 ? "" : "/anyOf/" + std::to_string(calls.size())) +
                                   "/properties/" + key);
    calls.push_back({{"type", "object"},
                     {"properties", {{"name", {{"const", name}}}, {key, std::move(arguments)}}},
                     {"required", {"name", key}},
                     {"additionalProperties", false}});
  }
  ordered schema = calls.size() == 1 ? calls[0] : ordered{{"anyOf", calls}};
  if (list) {
    schema = {{"type", "array"}, {"items", std::move(schema)}, {"minItems", 1}};
    if (!parallel) schema["maxItems"] = 1;
  }
  return schema.dump(-1, ' ', false, ordered::error_handler_t::replace);
}

std::string tool_call_tagged_json(const ordered& tools, const std::string& only, ToolCallForm form, bool parallel) {
  const std::string after_name(form == ToolCallForm::Harmony ? kHarmonyCallArgs : kArgsTag);
  ordered choices = ordered::array();
  for (const ordered& tool : tools) {
    const ordered& function = tool.at("function");
    const std::string& name = function.at("name").get_ref<const std::string&>();
    if (only.empty() || name == only) choices.push_back({{"tag", name + after_name}, {"schema", parameters_of(function)}});
  }
  ordered spec = {{"choices", std::move(choices)}};
  if (parallel && form == ToolCallForm::MistralArgs) spec["separator"] = kToolCallsTag;
  return spec.dump(-1, ' ', false, ordered::error_handler_t::replace);
}

}  // namespace qrun::server
