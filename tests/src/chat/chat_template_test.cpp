// Chat-template rendering: the real Llama 3 and Qwen3 templates must give byte-identical
// prompts to transformers (Jinja2 with trim_blocks and lstrip_blocks), and each piece of
// the supported Jinja subset is pinned down on its own. Expected strings were produced
// with jinja2 3.1 using transformers' environment settings.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "qrun/error.h"
#include "qrun/chat_template.h"

namespace qrun {
namespace {

std::string hf_template(const std::string& model) {
  const auto path = test::shared_dir() / "tokenizers" / model / "tokenizer_config.json";
  return nlohmann::json::parse(test::read_text(path)).at("chat_template").get<std::string>();
}

const std::vector<ChatMessage> kSysUser = {{"system", "SYS"}, {"user", "HI"}};
const std::vector<ChatMessage> kThree = {{"system", "SYS"}, {"user", " hi there "}, {"assistant", "A"}};

std::string render(const std::string& tmpl, const std::vector<ChatMessage>& msgs = kThree) {
  return apply_chat_template(tmpl, msgs, true, "<s>", "</s>");
}

// The error message for a template that must fail (empty when it renders).
std::string error_of(const std::string& tmpl) {
  try {
    render(tmpl);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ChatTemplate, Llama3SystemUser) {
  EXPECT_EQ(apply_chat_template(hf_template("llama3"), kSysUser, true, "<|begin_of_text|>", "<|end_of_text|>"),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nSYS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHI<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Qwen3SystemUser) {
  EXPECT_EQ(apply_chat_template(hf_template("qwen3"), kSysUser, true, "", "<|im_end|>"),
            "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nHI<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(apply_chat_template(hf_template("qwen3"), kSysUser, false, "", "<|im_end|>"),
            "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nHI<|im_end|>\n");
}

// Exercises the namespace bookkeeping, reversed iteration and <think> splitting.
TEST(ChatTemplate, Qwen3MultiTurnDropsOldReasoning) {
  std::vector<ChatMessage> msgs = {
      {"system", "SYS"}, {"user", "HI"}, {"assistant", "<think>\nhmm\n</think>\n\nHello"}};
  EXPECT_EQ(apply_chat_template(hf_template("qwen3"), msgs, false, "", ""),
            "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nHI<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nhmm\n</think>\n\nHello<|im_end|>\n");
  msgs.push_back({"user", "again"});
  EXPECT_EQ(apply_chat_template(hf_template("qwen3"), msgs, true, "", ""),
            "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nHI<|im_end|>\n"
            "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n");
}

// The templates Gemma 2 and Phi-3 ship (tokenizer_config.json's chat_template), three
// turns each, against the text transformers renders for them.
const char* kGemma2Template =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";
const char* kPhi3Template =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + "
    "'<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

TEST(ChatTemplate, Gemma2ThreeTurns) {
  const std::vector<ChatMessage> msgs = {{"user", "Hi there"}, {"assistant", " Hello! How can I help? "}, {"user", "Tell me a story"}};
  EXPECT_EQ(apply_chat_template(kGemma2Template, msgs, true, "<bos>", "<eos>"),
            "<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
            "<start_of_turn>user\nTell me a story<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_THROW(apply_chat_template(kGemma2Template, {{"system", "S"}, {"user", "U"}}, true, "<bos>", "<eos>"), Error);
  EXPECT_THROW(apply_chat_template(kGemma2Template, {{"user", "U"}, {"user", "U"}}, true, "<bos>", "<eos>"), Error);
}

// Gemma 3's template: the system message is folded into the first user turn; content
// may be a string or a list of parts. Expected text rendered with jinja2 3.1.2 and
// transformers' settings (trim_blocks, lstrip_blocks).
const char* kGemma3Template = R"JINJA({{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
)JINJA";

TEST(ChatTemplate, Gemma3FoldsTheSystemMessageIntoTheFirstTurn) {
  const std::vector<ChatMessage> msgs = {
      {"system", "Be brief."}, {"user", "Hi there"}, {"assistant", " Hello! How can I help? "}, {"user", "Tell me a story"}};
  EXPECT_EQ(apply_chat_template(kGemma3Template, msgs, true, "<bos>", "<eos>"),
            "<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello! How can I "
            "help?<end_of_turn>\n<start_of_turn>user\nTell me a story<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(apply_chat_template(kGemma3Template, {{"user", "Hi there"}}, false, "<bos>", "<eos>"),
            "<bos><start_of_turn>user\nHi there<end_of_turn>\n");
  EXPECT_THROW(apply_chat_template(kGemma3Template, {{"user", "U"}, {"user", "U"}}, true, "<bos>", "<eos>"), Error);
}

TEST(ChatTemplate, Phi3ThreeTurns) {
  const std::vector<ChatMessage> msgs = {
      {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "Tell me a story"}};
  EXPECT_EQ(apply_chat_template(kPhi3Template, msgs, true, "<s>", "<|endoftext|>"),
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n"
            "<|user|>\nTell me a story<|end|>\n<|assistant|>\n");
  EXPECT_EQ(apply_chat_template(kPhi3Template, {{"user", "Hi"}}, false, "<s>", "<|endoftext|>"),
            "<|user|>\nHi<|end|>\n<|endoftext|>");
}

TEST(ChatTemplate, LoopVariables) {
  EXPECT_EQ(render("{% for m in messages %}{{ loop.index0 }}/{{ loop.index }}/{{ loop.length }}"
                   "{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}:{{ m.role }}={{ m['content'] }};"
                   "{% endfor %}"),
            "0/1/3F:system=SYS;1/2/3:user= hi there ;2/3/3L:assistant=A;");
}

TEST(ChatTemplate, Conditions) {
  EXPECT_EQ(render("{% for m in messages %}{% if m.role == 'system' %}S{% elif m.role == 'user' and not loop.last %}U"
                   "{% else %}O{% endif %}{% endfor %}{% if add_generation_prompt %}G{% endif %}"),
            "SUOG");
}

TEST(ChatTemplate, Filters) {
  EXPECT_EQ(render(R"T({{ messages[1].content | trim }}|{{ messages | length }}|{{ 'a"b\n' | tojson }}|)T"
                   R"T({{ 3 | string + 'x' }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}|{{ 'héllo' | length }})T"),
            R"T(hi there|3|"a\"b\n"|3x|ABab|5)T");
}

TEST(ChatTemplate, Expressions) {
  EXPECT_EQ(render("{{ messages[-1].role }} {{ 'abc'[::-1] }} {{ 'abcdef'[1:] }} {{ 'abcdef'[1:4] }} "
                   "{{ (messages[1:] | length) }} {{ 'ell' in 'hello' }} {{ 'x' not in 'hello' }} "
                   "{{ 'yes' if tools is none else 'no' }} {{ 1 ~ 'a' }} {{ 2 + 3 * 4 }} {{ 7 // 2 }} {{ -7 % 3 }} "
                   "{{ enable_thinking is defined }} {{ enable_thinking is not defined }} {{ 'a' is string }} "
                   "{{ none }} {{ [1, 'x'] }}"),
            "assistant cba bcdef bcd 2 True True yes 1a 14 3 2 False True True None [1, 'x']");
}

TEST(ChatTemplate, StringMethods) {
  EXPECT_EQ(render("{{ '  pad  '.strip() }}|{{ '  pad  '.lstrip() }}|{{ '  pad  '.rstrip() }}|"
                   "{{ 'a</think>b'.split('</think>')[-1] }}|{{ 'xxaxx'.strip('x') }}|"
                   "{{ 'hello'.startswith('he') }}{{ 'hello'.endswith('lo') }}|{{ 'a b  c'.split() }}"),
            "pad|pad  |  pad|b|a|TrueTrue|['a', 'b', 'c']");
}

// A `set` inside a loop lasts one iteration; namespace attributes outlive the loop.
TEST(ChatTemplate, NamespaceAndScoping) {
  EXPECT_EQ(render("{% set ns = namespace(n=0, last=none) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                   "{% set x = 5 %}{% if m.role == 'user' %}{% set ns.last = loop.index0 %}{% endif %}{% endfor %}"
                   "{{ ns.n }} {{ ns.last }} {{ x is defined }}"),
            "3 1 False");
}

TEST(ChatTemplate, WhitespaceControl) {
  EXPECT_EQ(render("<s>\n{%- for m in messages %}\n    {%- if m.role == 'user' %}\n        {{- ' U:' + m.content -}}\n"
                   "    {% endif %}\n{% endfor %}\n  {% if true %}\n  indented\n  {% endif %}\nend {{- '  ' -}}  !  "
                   "{# comment #}\nafter"),
            "<s> U: hi there   indented\nend  !  after");
}

// trim_blocks drops the newline after a block tag; lstrip_blocks drops indentation only
// when the tag starts its line.
TEST(ChatTemplate, TrimAndLstripBlocks) {
  EXPECT_EQ(render("{% if true %}\nA\n{% endif %}\n  {% if true %}  B{% endif %} C\n{# c #}\nD"), "A\n  B C\nD");
}

// Dicts keep insertion order like Python's (tojson and items() show it); the
// loopcontrols extension transformers enables gives break/continue.
TEST(ChatTemplate, DictOrderLoopControlsAndBlockSet) {
  EXPECT_EQ(render("{% for m in messages %}{% if loop.index is even %}{% continue %}{% endif %}"
                   "{% for k, v in m.items() %}{{ k }}={{ v }},{% endfor %}{{ m.get('x', 'dflt') }}"
                   "{% if loop.index > 2 %}{% break %}{% endif %};{% endfor %}{{ messages[0] | tojson }}"
                   "{% set cap %} {{ messages|length }}{% endset %}[{{ cap }}]{{ range(3)|join('-') }}"),
            R"T(role=system,content=SYS,dflt;role=assistant,content=A,dflt{"role": "system", "content": "SYS"}[ 3]0-1-2)T");
}

// Macros (gpt-oss's template renders tool types with a recursive one): default and keyword
// arguments, recursion, a `set` that stays inside the call, the template's top-level
// variables seen and the caller's loop variables not, the value a string. Expected text
// from jinja2 3.1 with transformers' settings.
TEST(ChatTemplate, Macros) {
  EXPECT_EQ(render("{%- macro ts(spec, depth=0) -%}{%- if spec.type == 'array' -%}{{ ts(spec['items'], depth + 1) + '[]' }}"
                   "{%- elif spec.type is defined -%}{{ spec.type }}{%- else -%}any{%- endif -%}{%- endmacro -%}"
                   "{%- macro greet(who, greeting='hi', mark='!') -%}{% set who = who | upper %}{{ greeting }} {{ who }}"
                   "{{ mark }}{%- endmacro -%}{% set x = 'top' %}{%- macro sees() -%}[{{ x }}|{{ m is defined }}]"
                   "{%- endmacro -%}{% for m in messages %}{{ greet(m.role) }} {{ greet(m.role, mark='?') }} {{ sees() }};"
                   "{% endfor %}{{ ts({'type': 'array', 'items': {'type': 'array', 'items': {'type': 'string'}}}) }} "
                   "{{ ts({}) }}{% set s = greet('x', 'yo') %}{{ s | length }}"),
            "hi SYSTEM! hi SYSTEM? [top|False];hi USER! hi USER? [top|False];hi ASSISTANT! hi ASSISTANT? "
            "[top|False];string[][] any5");
  EXPECT_NE(error_of("{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}").find("macro f() takes 1 arguments, got 2"),
            std::string::npos);
  EXPECT_NE(error_of("{% macro f(a) %}{% endmacro %}{{ f(b=1) }}").find("macro f() has no parameter 'b'"),
            std::string::npos);
  EXPECT_NE(error_of("{% for m in messages %}{% macro f() %}{% break %}{% endmacro %}{% endfor %}").find("outside a loop"),
            std::string::npos);
  EXPECT_NE(error_of("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}").find("nested more than the limit"),
            std::string::npos);
}

TEST(ChatTemplate, RaiseException) {
  EXPECT_NE(error_of("{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}"
                     "{% endif %}")
                .find("Conversation must start with user"),
            std::string::npos);
}

TEST(ChatTemplate, UnsupportedConstructsNameWhatAndWhere) {
  const std::string call = error_of("ok\n  {% call greet(x) %}hi{% endcall %}");
  EXPECT_NE(call.find("unsupported statement '{% call %}'"), std::string::npos) << call;
  EXPECT_NE(call.find("line 2, column 6"), std::string::npos) << call;
  EXPECT_NE(error_of("{{ x | wordwrap }}").find("unsupported filter 'wordwrap'"), std::string::npos);
  EXPECT_NE(error_of("{{ cycler() }}").find("unsupported function 'cycler()'"), std::string::npos);
  EXPECT_NE(error_of("{% if true %}x").find("never closed"), std::string::npos);
  EXPECT_NE(error_of("{{ 1.5 }}").find("floating-point"), std::string::npos);
  EXPECT_NE(error_of("{% for m in messages recursive %}{% endfor %}").find("recursive loops"), std::string::npos);
  EXPECT_NE(error_of("{{ undefined_thing.attr }}").find("undefined"), std::string::npos);
}

// Templates come from model files: whatever one does, rendering ends with a result or
// a qrun::Error naming the limit it ran into, never a crash, a hang or gigabytes.
// (Issue 15 reproducers.)
TEST(ChatTemplateLimits, NamespaceThatContainsItselfIsAnErrorNotARecursion) {
  const std::string e = error_of("{% set ns = namespace(s=none) %}{% set ns.s = ns %}{{ ns }}");
  EXPECT_NE(e.find("nested more than the limit of 64 levels"), std::string::npos) << e;
  EXPECT_NE(error_of("{% set ns = namespace(s=1) %}{% set ns.s = ns %}{{ ns | tojson }}").find("limit of 64 levels"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s=1) %}{% set ns.s = ns %}{{ ns == ns }}").find("limit of 64 levels"),
            std::string::npos);
  // Reading through the cycle is fine, as in Jinja.
  EXPECT_EQ(render("{% set ns = namespace(s=none, v=7) %}{% set ns.s = ns %}{{ ns.s.s.s.v }}"), "7");
}

TEST(ChatTemplateLimits, StringDoublingStopsAtTheStringLimit) {
  for (const char* op : {"~", "+"}) {
    const std::string e = error_of(std::string("{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
                                               "{% set ns.s = ns.s ") + op + " ns.s %}{% endfor %}{{ ns.s | length }}");
    EXPECT_NE(e.find("string longer than the limit of 8388608 bytes"), std::string::npos) << op << ": " << e;
    EXPECT_NE(e.find("line 1"), std::string::npos) << e;
  }
  EXPECT_NE(error_of("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = [ns.s, ns.s] | join('') %}"
                     "{% endfor %}")
                .find("string longer than the limit"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='abab') %}{% for i in range(64) %}{% set ns.s = ns.s.replace('a', 'aa') %}"
                     "{% endfor %}")
                .find("string longer than the limit"),
            std::string::npos);
}

TEST(ChatTemplateLimits, OutputStopsAtTheOutputLimit) {
  const std::string e = error_of("{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}"
                                 "{% endfor %}{% for i in range(100) %}{{ ns.s }}{% endfor %}");
  EXPECT_NE(e.find("rendered output longer than the limit of 8388608 bytes"), std::string::npos) << e;
}

TEST(ChatTemplateLimits, NestedLoopsStopAtTheStepLimit) {
  const std::string e = error_of("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}");
  EXPECT_NE(e.find("more than the limit of 10000000 steps"), std::string::npos) << e;
  // Doubling a list is stopped by the elements it copies.
  EXPECT_NE(error_of("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}")
                .find("steps"),
            std::string::npos);
  // Comparing a value shared into an exponentially large tree costs a step per node.
  EXPECT_NE(error_of("{% set ns = namespace(l=[]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}{% endfor %}"
                     "{{ ns.l == ns.l }}")
                .find("steps"),
            std::string::npos);
}

TEST(ChatTemplateLimits, DeepNestingIsRefusedNotAStackOverflow) {
  std::string ifs;
  for (int i = 0; i < 5000; ++i) ifs += "{% if true %}";
  ifs += "x";
  for (int i = 0; i < 5000; ++i) ifs += "{% endif %}";
  std::string e = error_of(ifs);
  EXPECT_NE(e.find("blocks nested more than the limit of 64 levels"), std::string::npos) << e;
  // 64 levels still render.
  std::string ok;
  for (int i = 0; i < 64; ++i) ok += "{% for m in messages[:1] %}";
  ok += "x";
  for (int i = 0; i < 64; ++i) ok += "{% endfor %}";
  EXPECT_EQ(render(ok), "x");

  // A list nested 10,000 deep, built in a loop, then printed as JSON.
  e = error_of("{% set ns = namespace(l=[]) %}{% for i in range(10000) %}{% set ns.l = [ns.l] %}{% endfor %}"
               "{{ ns.l | tojson }}");
  EXPECT_NE(e.find("lists and dicts nested more than the limit of 64 levels"), std::string::npos) << e;
  // The same depth through a chain of namespaces (each counts as one level when built).
  e = error_of("{% set ns = namespace(cur=none) %}{% for i in range(10000) %}{% set ns.cur = namespace(next=ns.cur) %}"
               "{% endfor %}{{ ns.cur | tojson }}");
  EXPECT_NE(e.find("nested more than the limit of 64 levels to print"), std::string::npos) << e;
  // Written out in the template: brackets, `not`, minus and long operator chains.
  for (const std::string_view open : {"[", "(", "not ", "-"}) {
    std::string t = "{{ ";
    for (int i = 0; i < 10000; ++i) t += open;
    t += "1";
    if (open == "[" || open == "(") t += std::string(10000, open == "[" ? ']' : ')');
    t += " }}";
    e = error_of(t);
    EXPECT_NE(e.find("expression nested more than the limit of 64 levels"), std::string::npos) << open << ": " << e;
  }
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " + 1";
  e = error_of(chain + " }}");
  EXPECT_NE(e.find("expression more than the limit of 256 operations deep"), std::string::npos) << e;
  std::string filters = "{{ 'a'";
  for (int i = 0; i < 100000; ++i) filters += " | trim";
  e = error_of(filters + " }}");
  EXPECT_NE(e.find("operations deep"), std::string::npos) << e;
}

// The limits leave real templates room: a long conversation (2,000 turns, 4 MB of text)
// renders with the shipped templates.
TEST(ChatTemplateLimits, LongConversationsStillRender) {
  std::vector<ChatMessage> msgs = {{"system", "SYS"}};
  const std::string text(2000, 'w');
  for (int i = 0; i < 1000; ++i) {
    msgs.push_back({"user", text});
    msgs.push_back({"assistant", text});
  }
  for (const char* model : {"qwen3", "llama3"}) {
    const std::string out = apply_chat_template(hf_template(model), msgs, true, "<s>", "</s>");
    EXPECT_GT(out.size(), 4000000u) << model;
  }
}

TEST(ChatTemplateLimits, IntegerOverflowIsAnError) {
  EXPECT_NE(error_of("{{ 999999999999999999 * 999999999999999999 }}").find("integer overflow"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(n=999999999999999999) %}{% for i in range(20) %}{% set ns.n = ns.n + ns.n %}"
                     "{% endfor %}")
                .find("integer overflow"),
            std::string::npos);
  EXPECT_NE(error_of("{{ range(-999999999999999999, 999999999999999999) | length }}").find("limit of 100000"),
            std::string::npos);
  EXPECT_EQ(render("{{ range(10, 0, -3) | join(',') }} {{ 'abcdef'[1::999999999999999999] }}"), "10,7,4,1 b");
}


// Tools and tool calls as transformers gives them to Qwen3's real template: the tools list
// (key order, a non-ASCII description, floats) printed by tojson, the calls' arguments as
// mappings (OpenAI sends them as JSON text), tool replies folded into one user turn.
TEST(ChatTemplate, Qwen3ToolsCallsAndReplies) {
  const std::string tools =
      R"([{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city, in °C",)"
      R"( "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]},)"
      R"( "days": {"type": "integer", "minimum": 1, "maximum": 9}, "ratio": {"type": "number", "minimum": 0.5,)"
      R"( "maximum": 1e-05}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "now", "parameters": {}}}])";
  std::vector<ChatMessage> msgs = {{"system", "SYS"}, {"user", "Weather in Paris?"}, {"assistant", ""}};
  msgs.back().tool_calls = {{"call_1", "get_weather", R"({"city":"Paris","days":2,"ratio":0.75})"}, {"call_2", "now", "{}"}};
  msgs.push_back({"tool", R"({"temp": 21.5})", {}, "call_1"});
  msgs.push_back({"tool", "12:00", {}, "call_2"});
  const std::string expected =
      "<|im_start|>system\nSYS\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
      R"({"type": "function", "function": {"name": "get_weather", "description": "Weather for a city, in °C", )"
      R"("parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}, )"
      R"("days": {"type": "integer", "minimum": 1, "maximum": 9}, "ratio": {"type": "number", "minimum": 0.5, )"
      R"("maximum": 1e-05}}, "required": ["city"]}}})"
      "\n"
      R"({"type": "function", "function": {"name": "now", "parameters": {}}})"
      "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
      "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
      "</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
      R"({"name": "get_weather", "arguments": {"city": "Paris", "days": 2, "ratio": 0.75}})"
      "\n</tool_call>\n<tool_call>\n"
      R"({"name": "now", "arguments": {}})"
      "\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 21.5}\n</tool_response>\n"
      "<tool_response>\n12:00\n</tool_response><|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(apply_chat_template(hf_template("qwen3"), msgs, true, "", "<|im_end|>", tools), expected);
  // Arguments that are not a JSON object reach the template as the text they are.
  msgs[2].tool_calls = {{"c", "now", "not json"}};
  EXPECT_NE(apply_chat_template(hf_template("qwen3"), msgs, true, "", "", tools).find("\"arguments\": not json}"),
            std::string::npos);
  EXPECT_THROW(apply_chat_template(hf_template("qwen3"), msgs, true, "", "", "{\"a\": 1}"), Error);  // not a list
}

// Loop filters (`for ... if ...`: loop.* counts the items kept) and the filters Mistral's
// templates pick turns with: selectattr / rejectattr with a test, list. Expected text from
// jinja2 3.1.
TEST(ChatTemplate, LoopFiltersAndSelectattr) {
  const std::string list = R"([{"role": "system", "content": "S"}, {"role": "user", "content": "a"},)"
                           R"( {"role": "assistant", "content": "b"}, {"role": "user", "content": "c", "x": ""},)"
                           R"( {"role": "tool", "content": "d"}])";
  const auto render = [&](const std::string& tmpl) { return apply_chat_template(tmpl, {}, false, "", "", list); };
  EXPECT_EQ(render("{% for m in tools if m.role != 'system' %}{{ loop.index }}/{{ loop.length }}:{{ m.content }}"
                   "{{ ',' if not loop.last }}{% endfor %}"),
            "1/4:a,2/4:b,3/4:c,4/4:d");
  EXPECT_EQ(render("{% for k, v in {'a': 1, 'return': 2, 'b': 3}.items() if k != 'return' %}{{ k }}={{ v }}"
                   "{% if loop.last %}.{% endif %}{% endfor %}"),
            "a=1b=3.");
  EXPECT_EQ(render("{% for m in tools if m.role == 'nobody' %}x{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(render("{{ tools | selectattr('role', 'equalto', 'user') | list | length }} "
                   "{{ (tools | selectattr('role', 'equalto', 'user') | list)[-1].content }}"),
            "2 c");
  EXPECT_EQ(render("{{ tools | rejectattr('role', 'equalto', 'user') | list | length }}"), "3");
  EXPECT_EQ(render("{{ tools | selectattr('x', 'defined') | list | length }} {{ tools | selectattr('x') | list | length }} "
                   "{{ tools | rejectattr('x', 'undefined') | list | length }}"),
            "1 0 1");
  EXPECT_EQ(render("{{ 'abc' | list }} {{ {'k': 1} | list }}"), "['a', 'b', 'c'] ['k']");
  EXPECT_EQ(render("{% for m in tools %}{% if m == (tools | selectattr('role', 'equalto', 'user') | list)[-1] %}"
                   "last user: {{ m.content }}{% endif %}{% endfor %}"),
            "last user: c");
  for (const char* bad : {"{{ tools | selectattr('role', 'sameas', 'user') | list }}",
                          "{{ tools | selectattr('role', 'equalto') | list }}", "{{ tools | selectattr(1) | list }}",
                          "{% for m in tools if %}{% endfor %}"})
    EXPECT_THROW(render(bad), Error) << bad;
}

// tojson's keywords as transformers passes them to json.dumps (Llama 3.x templates write
// each tool with indent=4). Expected text from Python 3.11's json.dumps.
TEST(ChatTemplate, TojsonTakesJsonDumpsKeywords) {
  const std::string value = R"([{"b": 1, "a": [1, 2.5, [], {}], "é": "x😀\n\"q\"", "n": null, "t": true}, []])";
  const auto render = [&](const std::string& args) {
    return apply_chat_template("{{ tools | tojson(" + args + ") }}", {}, false, "", "", value);
  };
  EXPECT_EQ(render("indent=4"),
            "[\n    {\n        \"b\": 1,\n        \"a\": [\n            1,\n            2.5,\n            [],\n            {}\n"
            "        ],\n        \"é\": \"x😀\\n\\\"q\\\"\",\n        \"n\": null,\n        \"t\": true\n    },\n    []\n]");
  EXPECT_EQ(render("indent=2, sort_keys=true"),
            "[\n  {\n    \"a\": [\n      1,\n      2.5,\n      [],\n      {}\n    ],\n    \"b\": 1,\n    \"n\": null,\n"
            "    \"t\": true,\n    \"é\": \"x😀\\n\\\"q\\\"\"\n  },\n  []\n]");
  EXPECT_EQ(render("ensure_ascii=true"),
            R"([{"b": 1, "a": [1, 2.5, [], {}], "\u00e9": "x\ud83d\ude00\n\"q\"", "n": null, "t": true}, []])");
  EXPECT_EQ(render("separators=[',', ':']"), R"([{"b":1,"a":[1,2.5,[],{}],"é":"x😀\n\"q\"","n":null,"t":true},[]])");
  EXPECT_EQ(render("indent=0"), "[\n{\n\"b\": 1,\n\"a\": [\n1,\n2.5,\n[],\n{}\n],\n\"é\": \"x😀\\n\\\"q\\\"\",\n\"n\": null,\n"
                                "\"t\": true\n},\n[]\n]");
  EXPECT_EQ(render("indent=1, separators=[';', '=']"),
            "[\n {\n  \"b\"=1;\n  \"a\"=[\n   1;\n   2.5;\n   [];\n   {}\n  ];\n  \"é\"=\"x😀\\n\\\"q\\\"\";\n  \"n\"=null;\n"
            "  \"t\"=true\n };\n []\n]");
  EXPECT_EQ(render("indent=none"), render(""));
  for (const char* bad : {"4", "indent='x'", "indent=-1", "width=3", "sort_keys=1", "separators=[',']"})
    EXPECT_THROW(render(bad), Error) << bad;
}

// An assistant turn's reasoning_content reaches the template only where the message has
// it: Qwen3's writes it back in <think> for the turns since the last question, and
// otherwise reads the reasoning out of the content. Expected text from jinja2 3.1 with
// transformers' settings.
TEST(ChatTemplate, Qwen3ReasoningOfTheTurnsSinceTheLastQuestion) {
  std::vector<ChatMessage> msgs = {{"user", "Weather?"}, {"assistant", ""}, {"tool", "12:00", {}, "c1"}};
  msgs[1].tool_calls = {{"c1", "now", "{}"}};
  msgs[1].reasoning_content = "I should call.";
  EXPECT_EQ(apply_chat_template(hf_template("qwen3"), msgs, true, "", ""),
            "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n<think>\nI should call.\n</think>\n\n"
            "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call><|im_end|>\n<|im_start|>user\n"
            "<tool_response>\n12:00\n</tool_response><|im_end|>\n<|im_start|>assistant\n");
  const std::vector<ChatMessage> turns = {{"user", "Hi"},
                                          {"assistant", "<think>\nhidden\n</think>\n\nHello."},
                                          {"user", "Bye"},
                                          {"assistant", "<think>\nshown\n</think>\n\nBye."}};
  EXPECT_EQ(apply_chat_template(hf_template("qwen3"), turns, false, "", ""),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nshown\n</think>\n\nBye.<|im_end|>\n");
}

// gpt-oss's template writes the reasoning of a turn that called a tool back as its
// analysis channel, reading it as `thinking`; turns without reasoning have neither name.
TEST(ChatTemplate, ReasoningIsThinkingToo) {
  const std::string tmpl = "{% for m in messages %}{% if m.thinking is defined %}[{{ m.thinking }}]{% endif %}"
                           "{% if m.reasoning_content is defined %}({{ m.reasoning_content }}){% endif %}{{ m.content }};{% endfor %}";
  std::vector<ChatMessage> msgs = {{"user", "Q"}, {"assistant", "A"}, {"assistant", "B"}};
  msgs[1].reasoning_content = "think";
  EXPECT_EQ(apply_chat_template(tmpl, msgs, false, "", ""), "Q;[think](think)A;B;");
}

// kwargs reach the template as variables (Qwen3's enable_thinking: false writes an empty
// think block); ChatFormatter's own kwargs and a call's are merged key by key.
TEST(ChatTemplate, KwargsAreTemplateVariables) {
  const std::string qwen3 = hf_template("qwen3");
  const std::string plain = apply_chat_template(qwen3, kSysUser, true, "", "");
  EXPECT_EQ(apply_chat_template(qwen3, kSysUser, true, "", "", "", R"({"enable_thinking": false})"),
            plain + "<think>\n\n</think>\n\n");
  EXPECT_EQ(apply_chat_template(qwen3, kSysUser, true, "", "", "", R"({"enable_thinking": true})"), plain);
  EXPECT_THROW(apply_chat_template(qwen3, kSysUser, true, "", "", "", "[1]"), Error);
  EXPECT_THROW(apply_chat_template(qwen3, kSysUser, true, "", "", "", R"({"messages": []})"), Error);
  EXPECT_EQ(apply_chat_template("{{ a }} {{ b.c }}", {}, false, "", "", "", R"({"a": 1.5, "b": {"c": [1, "x"]}})"),
            "1.5 [1, 'x']");
}

// JSON floats print as Python's repr (what json.dumps and str() write): expected text from
// Python 3.11.
TEST(ChatTemplate, JsonFloatsPrintAsPython) {
  const std::string floats = "[0.1, 1.0, 100.0, 1e+16, 1.5e-07, 123456.789, -0.0001, 2.5e+300, 1e+22, "
                             "0.30000000000000004, 1.2345678901234568e+16, 9999999999999998.0, 0.00012, -3.0]";
  EXPECT_EQ(apply_chat_template("{{ tools | tojson }}|{{ tools }}", {}, false, "", "", floats), floats + "|" + floats);
  EXPECT_EQ(apply_chat_template("{{ tools[1] is float }} {{ tools[1] is number }} {{ tools[1] is integer }} "
                                "{{ tools[1] == 1 }} {{ tools[2] is float }}",
                                {}, false, "", "", "[1, 1.0, 2]"),
            "True True False True False");
}

}  // namespace
}  // namespace qrun
