// Hermes-form tool calls: reading them out of a reply, streaming the text around them,
// and the schema that holds a required call.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "qrun/error.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"
#include "src/runtime/grammar.h"
#include "src/runtime/json_schema_grammar.h"
#include "src/chat/reply_scan.h"
#include "src/chat/harmony_reply.h"
#include "src/server/tool_calls.h"

namespace qrun::server {
namespace {

using ordered = nlohmann::ordered_json;

TEST(ToolCalls, BlocksBecomeCallsAndLeaveTheText) {
  const ParsedReply r = parse_tool_calls(
      "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>\n");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].name, "get_weather");
  EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris","days":2})");  // compact, in the model's key order
  EXPECT_EQ(r.calls[1].name, "now");
  EXPECT_EQ(r.calls[1].arguments, "{}");
  EXPECT_EQ(r.content, "Let me look.");
  EXPECT_TRUE(r.calls[0].id.empty());
}

TEST(ToolCalls, OtherFormsAndBrokenBlocks) {
  // Arguments as a JSON string, Llama's "parameters", a last block without its closing tag.
  ParsedReply r = parse_tool_calls("<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}</tool_call>"
                                   "<tool_call>{\"name\": \"g\", \"parameters\": {\"y\": [1, 2]}}");
  ASSERT_EQ(r.calls.size(), 2u);
  EXPECT_EQ(r.calls[0].arguments, R"({"x":1})");
  EXPECT_EQ(r.calls[1].name, "g");
  EXPECT_EQ(r.calls[1].arguments, R"({"y":[1,2]})");
  EXPECT_EQ(r.content, "");
  // A block that is not a call stays text, and a reply without calls is unchanged.
  for (const char* text : {"<tool_call>{\"name\": \"f\"}</tool_call> ", "<tool_call>{\"name\": 3, \"arguments\": {}}",
                           "<tool_call>{\"name\": \"\", \"arguments\": {}}", "<tool_call>not json</tool_call>",
                           "<tool_call>{\"name\": \"f\", \"arguments\": [1]}", "plain text  ", "", "<tool_call"}) {
    r = parse_tool_calls(text);
    EXPECT_TRUE(r.calls.empty()) << text;
    EXPECT_EQ(r.content, text);
  }
  // Past a template's depth a block is not a call (nor copied: 100,000 levels would
  // overflow the stack).
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  for (const std::string& block : {R"({"name": "f", "arguments": {"a": )" + deep + "}}",
                                   R"({"name": "f", "arguments": ")" + std::string(70, '[') + std::string(70, ']') + "\"}",
                                   R"({"name": "f", "arguments": {}, "x": )" + deep + "}"}) {
    r = parse_tool_calls("<tool_call>" + block + "</tool_call>");
    EXPECT_TRUE(r.calls.empty());
  }
  r = parse_tool_calls("a <tool_call>bad</tool_call> b <tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.content, "a <tool_call>bad</tool_call> b");
  // The whitespace after a call goes with it; text around calls stays.
  r = parse_tool_calls("Sure.\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n\nDone!\n");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.content, "Sure.\nDone!");
}

TEST(ToolCalls, PlainTextStopsWhereACallMayBegin) {
  EXPECT_EQ(plain_text_length("hello"), 5u);
  EXPECT_EQ(plain_text_length("hello <"), 6u);
  EXPECT_EQ(plain_text_length("hello <tool_c"), 6u);
  EXPECT_EQ(plain_text_length("hello <tool_call"), 6u);
  EXPECT_EQ(plain_text_length("a <tool_call>{"), 2u);
  EXPECT_EQ(plain_text_length("a <b> c"), 7u);
  EXPECT_EQ(plain_text_length("<tool_calx"), 10u);
}

// Whatever the pieces a reply arrives in, what a stream sends adds up to the whole
// reply's content, and it finds the same calls.
TEST(ToolCalls, StreamedPiecesAddUpToTheWholeReply) {
  const std::string replies[] = {
      "Sure.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"<tool_call>\"}}\n</tool_call>",
      "no calls, a < sign and <tool_ at the end <tool_",
      "x <tool_call>broken</tool_call> y",
      "Sure.\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n\nDone!\n",
      "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n<tool_call>{\"name\": \"g\", \"arguments\": {}}",
      "Sure thing.   \n\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>",
      "a \n b \n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n after \n",
      "trailing space, no call \n ",
  };
  for (const std::string& reply : replies) {
    const ParsedReply whole = parse_tool_calls(reply);
    for (size_t piece = 1; piece <= 5; ++piece) {
      ToolCallStream stream;
      std::string sent;
      for (size_t at = 0; at < reply.size(); at += piece) sent += stream.feed(reply.substr(at, piece));
      const ParsedReply last = stream.finish();
      sent += last.content;
      EXPECT_EQ(sent, whole.content) << reply << " in pieces of " << piece;
      ASSERT_EQ(last.calls.size(), whole.calls.size()) << reply;
      for (size_t i = 0; i < whole.calls.size(); ++i) EXPECT_EQ(last.calls[i].arguments, whole.calls[i].arguments);
    }
  }
  ToolCallStream required("<tool_call>\n");  // a required call: the prompt wrote the opening tag
  EXPECT_EQ(required.feed("{\"name\": \"f\", \"arguments\": {}}"), "");
  ASSERT_EQ(required.finish().calls.size(), 1u);
  ToolCallStream cut("<tool_call>\n");  // one that ran out of tokens: the text, as a whole reply gives it
  EXPECT_EQ(cut.feed("{\"name\": "), "");
  EXPECT_EQ(cut.finish().content, "{\"name\": ");
  EXPECT_TRUE(cut.finish().calls.empty());
}

// The schema of a required call takes a call to an offered tool with its arguments, and
// nothing else.
TEST(ToolCalls, RequiredCallSchemaTakesOnlyOfferedCalls) {
  const ordered tools = ordered::parse(R"([
      {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}}, "required": ["city"]}}},
      {"type": "function", "function": {"name": "now", "parameters": {}}},
      {"type": "function", "function": {"name": "noargs"}}])");
  const auto takes = [](const std::string& schema, const std::string& text) {
    GrammarPrefix p(json_schema_grammar(schema));
    return p.feed(std::string_view(text)) && p.complete();
  };
  const std::string any = tool_call_schema(tools, "");
  EXPECT_TRUE(takes(any, R"({"name": "get_weather", "arguments": {"city": "Rome"}})"));
  EXPECT_TRUE(takes(any, R"({"name": "now", "arguments": {}})"));
  EXPECT_TRUE(takes(any, R"({"name": "noargs", "arguments": {}})"));
  EXPECT_FALSE(takes(any, R"({"name": "noargs", "arguments": {"z": 1}})"));  // no parameters: none, as OpenAI reads it
  EXPECT_FALSE(takes(any, R"({"name": "get_weather", "arguments": {"city": "Oslo"}})"));
  EXPECT_FALSE(takes(any, R"({"name": "other", "arguments": {}})"));
  EXPECT_FALSE(takes(any, R"({"name": "now", "arguments": []})"));
  EXPECT_FALSE(takes(any, R"({"name": "now"})"));
  const std::string one = tool_call_schema(tools, "now");
  EXPECT_TRUE(takes(one, R"({"name": "now", "arguments": {}})"));
  EXPECT_FALSE(takes(one, R"({"name": "get_weather", "arguments": {"city": "Rome"}})"));
  const ParsedReply r = parse_tool_calls("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}");
  ASSERT_EQ(r.calls.size(), 1u);
  EXPECT_EQ(r.calls[0].arguments, R"({"city":"Rome"})");
}

// A tool's parameters keep their own references (Pydantic writes "#/$defs/..."; "#" is
// the parameters themselves), whether one tool is offered or several.
TEST(ToolCalls, ReferencesInParametersStayTheirs) {
  const ordered tools = ordered::parse(R"([
      {"type": "function", "function": {"name": "place", "parameters": {"type": "object",
        "properties": {"at": {"$ref": "#/$defs/point"}}, "required": ["at"], "additionalProperties": false,
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"],
                            "additionalProperties": false}}}}},
      {"type": "function", "function": {"name": "tree", "parameters": {"type": "object",
        "properties": {"v": {"type": "integer"}, "kid": {"type": "array", "items": {"$ref": "#"}, "maxItems": 1}},
        "required": ["v", "kid"], "additionalProperties": false}}}])");
  const auto takes = [](const std::string& schema, const std::string& text) {
    GrammarPrefix p(json_schema_grammar(schema));
    return p.feed(std::string_view(text)) && p.complete();
  };
  for (const std::string& only : {std::string(), std::string("place")}) {
    const std::string schema = tool_call_schema(tools, only);
    EXPECT_TRUE(takes(schema, R"({"name": "place", "arguments": {"at": {"x": 3}}})")) << schema;
    EXPECT_FALSE(takes(schema, R"({"name": "place", "arguments": {"at": {"y": 3}}})")) << schema;
  }
  for (const std::string& only : {std::string(), std::string("tree")}) {
    const std::string schema = tool_call_schema(tools, only);
    EXPECT_TRUE(takes(schema, R"({"name": "tree", "arguments": {"v": 1, "kid": [{"v": 2, "kid": []}]}})")) << schema;
    EXPECT_FALSE(takes(schema, R"({"name": "tree", "arguments": {"v": 1, "kid": [{"name": "tree", "arguments": {}}]}})"));
  }
}

TEST(ToolCalls, TheTemplateTellsTheForm) {
  EXPECT_EQ(tool_call_form("{{ '<tool_call>\\n' }}"), ToolCallForm::Hermes);
  // As Llama 3.1-3.3's templates write a call and its result.
  EXPECT_EQ(tool_call_form("{{- '{\"name\": \"' + tool_call.name + '\", ' }}{{- '\"parameters\": ' }}"
                           "{{- \"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}"),
            ToolCallForm::LlamaJson);
  EXPECT_EQ(tool_call_form("{{- \"[TOOL_CALLS] [\" }}"), ToolCallForm::MistralJson);
  // As Mistral Small 3.2's and Magistral's write a call.
  EXPECT_EQ(tool_call_form("{{- \"[TOOL_CALLS]\" + tool.function.name + \"[ARGS]\" + arguments }}"),
            ToolCallForm::MistralArgs);
  EXPECT_EQ(tool_call_form("{% for m in messages %}{{ m.content }}{% endfor %}"), ToolCallForm::None);
  EXPECT_EQ(tool_call_form("<|start_header_id|>{{ m.role }}<|end_header_id|>"), ToolCallForm::None);
  EXPECT_EQ(required_call_start(ToolCallForm::Hermes), "<tool_call>\n");
  EXPECT_EQ(required_call_start(ToolCallForm::LlamaJson), "");
  EXPECT_EQ(required_call_start(ToolCallForm::MistralJson), "[TOOL_CALLS]");
  EXPECT_EQ(required_call_start(ToolCallForm::MistralArgs), "[TOOL_CALLS]");
  EXPECT_TRUE(call_markers(ToolCallForm::MistralJson).empty());
  EXPECT_EQ(call_markers(ToolCallForm::MistralArgs), (std::vector<std::string_view>{"[TOOL_CALLS]", "[CALL_ID]", "[ARGS]"}));
  // Kept are those that are special tokens of the vocabulary: on stories260K's with two
  // pieces made Mistral's control tokens, those two; [CALL_ID] is text there.
  auto data = std::make_shared<TokenizerData>(*load_hf_tokenizer(test::stories_dir()));
  const int32_t last = static_cast<int32_t>(data->pieces.size()) - 1;
  data->pieces[size_t(last - 1)] = "[TOOL_CALLS]", data->types[size_t(last - 1)] = PieceType::Control;
  data->pieces[size_t(last)] = "[ARGS]", data->types[size_t(last)] = PieceType::Control;
  const Tokenizer mistral(data);
  EXPECT_EQ(special_token_ids(mistral, call_markers(ToolCallForm::MistralArgs)), (std::vector<int32_t>{last - 1, last}));
  EXPECT_TRUE(special_token_ids(Tokenizer(load_hf_tokenizer(test::stories_dir())), call_markers(ToolCallForm::MistralArgs)).empty());
}

// Llama 3.x: a reply that is one {"name", "parameters"} object (after whitespace and
// <|python_tag|>) is a call; anything else is text, and streams as soon as it cannot be one.
TEST(ToolCalls, LlamaReplyIsOneCallOrText) {
  const auto llama = ToolCallForm::LlamaJson;
  for (const char* reply : {R"({"name": "get_weather", "parameters": {"city": "Paris", "days": 2}})",
                            " \n<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 2}}",
                            R"({"type": "function", "name": "get_weather", "arguments": {"city": "Paris", "days": 2}} )"}) {
    const ParsedReply r = parse_tool_calls(reply, llama);
    ASSERT_EQ(r.calls.size(), 1u) << reply;
    EXPECT_EQ(r.calls[0].name, "get_weather");
    EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris","days":2})");
    EXPECT_EQ(r.content, "");
  }
  for (const char* reply : {"The weather is fine.", R"({"answer": 42})", R"(Sure: {"name": "f", "parameters": {}})",
                            R"({"name": "f", "parameters": {}} and more)", "<|python_tag|>brave_search.call(query=\"x\")",
                            "", "  ", "{"}) {
    const ParsedReply r = parse_tool_calls(reply, llama);
    EXPECT_TRUE(r.calls.empty()) << reply;
    EXPECT_EQ(r.content, reply);
    // Streamed in pieces of every size: the same text, and the calls of the whole.
    for (size_t piece = 1; piece <= 4; ++piece) {
      ToolCallStream stream({}, llama);
      std::string sent;
      const std::string text = reply;
      for (size_t at = 0; at < text.size(); at += piece) sent += stream.feed(text.substr(at, piece));
      const ParsedReply last = stream.finish();
      EXPECT_EQ(sent + last.content, text);
      EXPECT_TRUE(last.calls.empty());
    }
  }
  ToolCallStream text({}, llama);
  EXPECT_EQ(text.feed(" "), "");
  EXPECT_EQ(text.feed(" The"), "  The");  // not a call: sent as it comes
  EXPECT_EQ(text.feed(" sky {"), " sky {");
  ToolCallStream call({}, llama);
  EXPECT_EQ(call.feed("<|python"), "");
  EXPECT_EQ(call.feed("_tag|>{\"name\": \"f\", "), "");
  EXPECT_EQ(call.feed("\"parameters\": {}}"), "");
  const ParsedReply done = call.finish();
  ASSERT_EQ(done.calls.size(), 1u);
  EXPECT_EQ(done.content, "");
  // A required call's schema names the arguments as Llama was taught: "parameters".
  const ordered tools = ordered::parse(R"([{"type": "function", "function": {"name": "now", "parameters": {}}}])");
  GrammarPrefix p(json_schema_grammar(tool_call_schema(tools, "", llama)));
  EXPECT_TRUE(p.feed(std::string_view(R"({"name": "now", "parameters": {}})")) && p.complete());
  GrammarPrefix q(json_schema_grammar(tool_call_schema(tools, "", llama)));
  EXPECT_FALSE(q.feed(std::string_view(R"({"name": "now", "arguments": {}})")) && q.complete());
}

// Mistral: a reply that is a list of calls (after [TOOL_CALLS], which a reply's text
// lacks when the tokenizer marks it a control token) is its calls, in order.
TEST(ToolCalls, MistralReplyIsAListOfCallsOrText) {
  const auto mistral = ToolCallForm::MistralJson;
  for (const char* reply : {R"([{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "now", "arguments": {}}])",
                            R"( [TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abcdefghi"}, )"
                            R"({"name": "now", "arguments": "{}"}])"}) {
    const ParsedReply r = parse_tool_calls(reply, mistral);
    ASSERT_EQ(r.calls.size(), 2u) << reply;
    EXPECT_EQ(r.calls[0].name, "get_weather");
    EXPECT_EQ(r.calls[0].arguments, R"({"city":"Paris"})");
    EXPECT_EQ(r.calls[1].name, "now");
    EXPECT_EQ(r.calls[1].arguments, "{}");
    EXPECT_EQ(r.content, "");
    for (size_t piece = 1; piece <= 4; ++piece) {  // held whole, then read the same
      ToolCallStream stream({}, mistral);
      const std::string text = reply;
      std::string sent;
      for (size_t at = 0; at < text.size(); at += piece) sent += stream.feed(text.substr(at, piece));
      EXPECT_EQ(sent, "");
      EXPECT_EQ(stream.finish().calls.size(), 2u);
    }
  }
  for (const char* reply : {"[1] is the first reference.", R"([{"name": "f", "arguments": {}}, {"x": 1}])", "[]",
                            R"({"name": "f", "arguments": {}})", "Sure. [TOOL_CALLS]", "[TOOL_CALLS"}) {
    const ParsedReply r = parse_tool_calls(reply, mistral);
    EXPECT_TRUE(r.calls.empty()) << reply;
    EXPECT_EQ(r.content, reply);
  }
  // A required call: the prompt ends with [TOOL_CALLS] and the list is held to the tools,
  // one call at most without parallel calls.
  ToolCallStream required(std::string(required_call_start(mistral)), mistral);
  EXPECT_EQ(required.feed(R"([{"name": "now", "arguments": {}}])"), "");
  EXPECT_EQ(required.finish().calls.size(), 1u);
  const ordered tools = ordered::parse(R"([{"type": "function", "function": {"name": "now", "parameters": {}}},
      {"type": "function", "function": {"name": "at", "parameters": {"type": "object",
       "properties": {"p": {"$ref": "#/$defs/p"}}, "required": ["p"], "$defs": {"p": {"type": "integer"}}}}}])");
  const auto takes = [](const std::string& schema, const std::string& text) {
    GrammarPrefix p(json_schema_grammar(schema));
    return p.feed(std::string_view(text)) && p.complete();
  };
  const std::string many = tool_call_schema(tools, "", mistral, true), one = tool_call_schema(tools, "", mistral, false);
  const std::string two = R"([{"name": "now", "arguments": {}}, {"name": "at", "arguments": {"p": 3}}])";
  EXPECT_TRUE(takes(many, two));
  EXPECT_FALSE(takes(one, two));
  EXPECT_TRUE(takes(one, R"([{"name": "at", "arguments": {"p": 3}}])"));
  EXPECT_FALSE(takes(one, R"([{"name": "at", "arguments": {"p": "x"}}])"));  // its $ref still points into it
  EXPECT_FALSE(takes(many, "[]"));
}

// Mistral's later form: text, then each call as [TOOL_CALLS]name[ARGS]{arguments}. The
// calls leave the text; a block that is not a call stays text; a stream sends the text
// before the first [TOOL_CALLS] as it comes and reads the calls of the whole.
TEST(ToolCalls, MistralArgsCallsFollowTheText) {
  const auto form = ToolCallForm::MistralArgs;
  struct Case {
    const char* reply;
    const char* content;
    size_t calls;
  };
  for (const Case& c : {
           Case{R"([TOOL_CALLS]get_weather[ARGS]{"city": "Paris"})", "", 1},
           Case{R"(Let me check. [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]now[ARGS]{} )", "Let me check.", 2},
           Case{R"([TOOL_CALLS] get_weather [ARGS] {"city": "Paris"}
[TOOL_CALLS]now[ARGS]"{}")", "", 2},
           Case{"The weather is fine.", "The weather is fine.", 0},
           Case{"[TOOL_CALLS]get weather[ARGS]{}", "[TOOL_CALLS]get weather[ARGS]{}", 0},  // not a name
           Case{"[TOOL_CALLS]now{}", "[TOOL_CALLS]now{}", 0},                           // no [ARGS]
           Case{"[TOOL_CALLS]now[ARGS][1]", "[TOOL_CALLS]now[ARGS][1]", 0},             // not an object
           Case{"[TOOL_CALLS][ARGS]{}", "[TOOL_CALLS][ARGS]{}", 0},                     // no name
           Case{R"([TOOL_CALLS]now[ARGS]{"a": )", R"([TOOL_CALLS]now[ARGS]{"a": )", 0},  // cut short
           Case{R"(a [TOOL_CALLS]x[ARGS]{} [TOOL_CALLS]y[ARGS]{)", R"(a [TOOL_CALLS]y[ARGS]{)", 1},
           // A call's block runs to the next one: text after its arguments makes it text.
           Case{R"([TOOL_CALLS]x[ARGS]{} done)", R"([TOOL_CALLS]x[ARGS]{} done)", 0},
           Case{"", "", 0},
       }) {
    const ParsedReply r = parse_tool_calls(c.reply, form);
    EXPECT_EQ(r.calls.size(), c.calls) << c.reply;
    EXPECT_EQ(r.content, c.content) << c.reply;
    for (size_t piece = 1; piece <= 5; ++piece) {
      ToolCallStream stream({}, form);
      const std::string text = c.reply;
      std::string sent;
      for (size_t at = 0; at < text.size(); at += piece) sent += stream.feed(text.substr(at, piece));
      const ParsedReply last = stream.finish();
      EXPECT_EQ(sent + last.content, r.content) << c.reply << " in pieces of " << piece;
      EXPECT_EQ(last.calls.size(), r.calls.size());
    }
  }
  // (Mistral Small 3.2's template writes each call's id after [CALL_ID].)
  const ParsedReply two =
      parse_tool_calls(R"(ok[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Paris"}[TOOL_CALLS]now[ARGS]"{}")", form);
  ASSERT_EQ(two.calls.size(), 2u);
  EXPECT_EQ(two.calls[0].name, "get_weather");
  EXPECT_EQ(two.calls[0].arguments, R"({"city":"Paris"})");
  EXPECT_EQ(two.calls[1].name, "now");
  EXPECT_EQ(two.calls[1].arguments, "{}");
  // The text before a call streams before the call is read; nothing of the call does.
  ToolCallStream stream({}, form);
  EXPECT_EQ(stream.feed("Checking"), "Checking");
  EXPECT_EQ(stream.feed(" now [TOOL"), " now");
  EXPECT_EQ(stream.feed("_CALLS]now[ARGS]{}"), "");
  EXPECT_EQ(stream.finish().calls.size(), 1u);

  // A required call: the prompt ends with [TOOL_CALLS]; the rest is `name[ARGS]` and the
  // arguments the tool's parameters accept, more after [TOOL_CALLS] only when parallel.
  ToolCallStream required(std::string(required_call_start(form)), form);
  EXPECT_EQ(required.feed(R"(at[ARGS]{"p": 3})"), "");
  EXPECT_EQ(required.finish().calls.size(), 1u);
  const ordered tools = ordered::parse(R"([{"type": "function", "function": {"name": "now", "parameters": {}}},
      {"type": "function", "function": {"name": "at", "parameters": {"type": "object",
       "properties": {"p": {"$ref": "#/$defs/p"}}, "required": ["p"], "$defs": {"p": {"type": "integer"}}}}}])");
  const auto takes = [](const std::string& spec, std::string_view text) {
    GrammarPrefix p(tagged_json_grammar(spec));
    return p.feed(text) && p.accepted();  // with parallel calls more may follow
  };
  const std::string many = tool_call_tagged_json(tools, "", form, true), one = tool_call_tagged_json(tools, "", form, false);
  const std::string pair = R"(now[ARGS]{}[TOOL_CALLS]at[ARGS]{"p": 3})";
  EXPECT_TRUE(takes(many, pair));
  EXPECT_FALSE(takes(one, pair));
  EXPECT_TRUE(takes(one, R"(at[ARGS]{"p": 3} )"));
  EXPECT_FALSE(takes(one, R"(at[ARGS] {"p": 3})"));  // as Mistral writes them: the JSON right after [ARGS]
  EXPECT_FALSE(takes(one, R"(at[ARGS]{"p": "x"})"));  // each tool's $ref points into its own parameters
  EXPECT_FALSE(takes(one, R"(now[ARGS]{"p": 3})"));   // a function of no parameters
  EXPECT_FALSE(takes(one, R"(later[ARGS]{})"));
  EXPECT_FALSE(takes(tool_call_tagged_json(tools, "at", form, false), "now[ARGS]{}"));
  EXPECT_EQ(parse_tool_calls(std::string(required_call_start(form)) + pair, form).calls.size(), 2u);
}

// gpt-oss's harmony calls: a template that writes messages to functions.NAME; a required
// call's prompt ends with the header up to the tool's name, and the grammar spells the
// name, the rest of the header and arguments the tool's parameters accept (one call:
// <|call|> ends the reply). Reading the reply: tests/src/chat/harmony_reply_test.cpp.
TEST(ToolCalls, HarmonyRequiredCall) {
  const std::string tmpl = R"({{- "<|start|>assistant to=" }}{{- "functions." + tool_call.name + "<|channel|>commentary " }})"
                           R"({{- "json<|message|>" }}{{- tool_call.arguments|tojson }}{{- "<|call|>" }})";
  EXPECT_EQ(tool_call_form(tmpl), ToolCallForm::Harmony);
  EXPECT_EQ(tool_call_form("{{ '<|start|>assistant<|channel|>final<|message|>' + m.content }}"), ToolCallForm::None);
  EXPECT_EQ(required_call_start(ToolCallForm::Harmony), kHarmonyCallStart);
  const ordered tools = ordered::parse(R"([{"type": "function", "function": {"name": "now", "parameters": {}}},
      {"type": "function", "function": {"name": "at", "parameters": {"type": "object",
       "properties": {"p": {"type": "integer"}}, "required": ["p"]}}}])");
  const auto takes = [](const std::string& spec, std::string_view text) {
    GrammarPrefix p(tagged_json_grammar(spec));
    return p.feed(text) && p.accepted();
  };
  const std::string any = tool_call_tagged_json(tools, "", ToolCallForm::Harmony, true);
  EXPECT_TRUE(takes(any, R"(at <|constrain|>json<|message|>{"p": 3})"));
  EXPECT_TRUE(takes(any, R"(now <|constrain|>json<|message|>{})"));
  EXPECT_FALSE(takes(any, R"(at <|constrain|>json<|message|>{"p": "x"})"));
  EXPECT_FALSE(takes(any, R"(now <|constrain|>json<|message|>{}now <|constrain|>json<|message|>{})"));
  EXPECT_FALSE(takes(tool_call_tagged_json(tools, "at", ToolCallForm::Harmony, true), R"(now <|constrain|>json<|message|>{})"));
}

}  // namespace
}  // namespace qrun::server
