// qrun's generation as a user meets it (issue 12): text that reads like the reference,
// seeds, stop strings, a full context, Ctrl-C, and -cnv conversations piped on stdin.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "common/child_process.h"
#include "common/golden.h"
#include "common/model_fixture.h"
#include "common/run_command.h"
#include "qrun/model_file.h"
#include "qrun/tokenizer.h"
#include "src/runtime/gbnf_grammar.h"
#include "src/runtime/grammar.h"
#include "src/runtime/json_prefix.h"
#include "src/runtime/json_schema_grammar.h"

namespace qrun {
namespace {

using test::quoted;
using test::run_command;

std::string qrun_bin() { return (test::bin_dir() / "qrun").string(); }
std::string model(DType t) { return test::converted_stories(t).string(); }
std::string stdout_of(const std::string& args) {  // stderr (timings) dropped
  return run_command("(" + qrun_bin() + " " + args + " 2>/dev/null)").out;
}

const char* kChatml =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// The prompt as typed, then the continuation as the reference prints it, including
// continuations that start with a space ("...sad because" + " he loved").
TEST(QrunGeneration, PrintsPromptThenGoldenContinuation) {
  for (const auto& c : test::load_golden()) {
    const std::string out = stdout_of("-m " + quoted(model(DType::F32)) + " -p " + quoted(c.prompt) +
                                      " -n 100 --ignore-eos --temp 0 -t 1");
    EXPECT_EQ(out, c.prompt + c.greedy_text + "\n");
  }
}

TEST(QrunGeneration, RandomSeedByDefaultSameSeedSameText) {
  const std::string base = "-m " + quoted(model(DType::Q8)) + " -p 'Once upon a time' -n 40 --temp 1 -t 1";
  auto seed_of = [&](const std::string& out) {
    std::smatch m;
    return std::regex_search(out, m, std::regex("seed = ([0-9]+)")) ? m[1].str() : std::string("none");
  };
  const auto a = run_command(qrun_bin() + " " + base + " --verbose"), b = run_command(qrun_bin() + " " + base + " --verbose");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_NE(seed_of(a.out), "none") << a.out;
  EXPECT_NE(seed_of(a.out), seed_of(b.out));
  EXPECT_EQ(stdout_of(base + " --seed 42"), stdout_of(base + " --seed 42"));
  EXPECT_NE(stdout_of(base + " --seed 42"), stdout_of(base + " --seed 43"));
}

// -l TOKEN_ID-inf bans the greedy continuation's first token; -l ID+100 makes a token
// the next one; ids outside the vocabulary and malformed biases are usage errors.
TEST(QrunGeneration, LogitBias) {
  const Tokenizer tok(deserialize_tokenizer(ModelFile(model(DType::Q8))));
  const std::string base = "-m " + quoted(model(DType::Q8)) + " -p 'Once upon a time,' --temp 0 -t 1";
  const std::string plain = stdout_of(base + " -n 4");
  const std::string first = plain.substr(std::string("Once upon a time,").size());
  const std::vector<int32_t> ids = tok.encode_continuation(first, false);
  ASSERT_FALSE(ids.empty()) << plain;
  const std::string banned = stdout_of(base + " -n 4 -l " + std::to_string(ids[0]) + "-inf");
  EXPECT_NE(banned.substr(0, plain.size()), plain);
  const int32_t purple = tok.encode_continuation(" purple", false).front();
  ASSERT_GT(tok.token_text(purple).size(), 1u);
  EXPECT_EQ(stdout_of(base + " -n 1 -l " + std::to_string(purple) + "+100"), "Once upon a time," + tok.token_text(purple) + "\n");
  for (const std::string bad : {"-l 100000+1", "-l abc", "-l 5*2", "-l 5+101"})
    EXPECT_NE(run_command(qrun_bin() + " " + base + " " + bad).exit_code, 0) << bad;
}

// -md: a draft model changes how many passes the model makes, not the text (q4 with a
// q8 draft, greedy and sampled), and the timings say how many guesses were accepted. A
// draft of another vocabulary, or none at all, is one line naming the file.
TEST(QrunGeneration, DraftModelKeepsTheTextAndReportsGuesses) {
  const std::string base = "-m " + quoted(model(DType::Q4)) + " -p 'Once upon a time' -n 60 -t 1";
  for (const std::string sampling : {" --temp 0", " --temp 1 --seed 5"}) {
    const auto r = run_command(qrun_bin() + " " + base + sampling + " -md " + quoted(model(DType::Q8)) + " --draft-max 4");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("accepted"), std::string::npos) << r.out;
    EXPECT_EQ(stdout_of(base + sampling + " --model-draft " + quoted(model(DType::Q8))), stdout_of(base + sampling));
  }
  auto r = run_command(qrun_bin() + " " + base + " -md /nonexistent.q4");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("/nonexistent.q4: cannot open"), std::string::npos) << r.out;
  r = run_command(qrun_bin() + " " + base + " -md " + quoted(model(DType::Q8)) + " --draft-max 0");
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

// --json: what follows the prompt is a JSON object or, cut by -n, a prefix of one.
TEST(QrunGeneration, JsonFlagConstrainsTheReply) {
  const std::string base = "-m " + quoted(model(DType::Q8)) + " -p 'Tim liked' --no-display-prompt -n 150 --temp 1 -t 1";
  for (int seed = 1; seed <= 3; ++seed) {
    std::string out = stdout_of(base + " --json --seed " + std::to_string(seed));
    ASSERT_FALSE(out.empty());
    out.pop_back();  // qrun's closing newline
    EXPECT_TRUE(JsonPrefix().feed(std::string_view(out))) << out;
    EXPECT_FALSE(JsonPrefix().feed(std::string_view(stdout_of(base + " --seed " + std::to_string(seed)))));
  }
}

// -j / --json-schema-file: the reply is what the schema accepts (or a prefix of it, cut by
// -n); a schema qrun cannot compile, or a missing file, is an error naming it before the
// model loads.
TEST(QrunGeneration, JsonSchemaConstrainsTheReply) {
  const std::string schema = R"({"type":"object","properties":{"colour":{"enum":["red","blue"]},"n":{"type":"integer"}},"required":["colour","n"]})";
  const std::string base = "-m " + quoted(model(DType::Q8)) + " -p 'Tim liked' --no-display-prompt -n 150 --temp 1 -t 1";
  test::ScratchDir dir;
  {
    std::ofstream f(dir / "schema.json");
    f << schema;
  }
  int whole = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    for (const std::string& flag : {"-j " + quoted(schema), "--json-schema-file " + quoted((dir / "schema.json").string())}) {
      std::string out = stdout_of(base + " " + flag + " --seed " + std::to_string(seed));
      ASSERT_FALSE(out.empty());
      out.pop_back();  // qrun's closing newline
      EXPECT_TRUE(GrammarPrefix(json_schema_grammar(schema)).feed(std::string_view(out))) << out;
      if (!nlohmann::json::accept(out)) continue;
      ++whole;
      const auto j = nlohmann::json::parse(out);
      EXPECT_TRUE(j["colour"] == "red" || j["colour"] == "blue") << out;
      EXPECT_TRUE(j["n"].is_number_integer()) << out;
    }
  }
  EXPECT_GT(whole, 0);
  const auto bad = run_command(qrun_bin() + " " + base + " -j '{\"type\":\"string\",\"pattern\":\"a\"}'");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("--json-schema: JSON schema at \"/pattern\""), std::string::npos) << bad.out;
  const auto empty = run_command(qrun_bin() + " " + base + " -j ''");
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE(empty.out.find("--json-schema: JSON schema: not JSON"), std::string::npos) << empty.out;
  const auto both = run_command(qrun_bin() + " " + base + " --json -j '{}'");
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.out.find("excludes"), std::string::npos) << both.out;
  const auto missing = run_command(qrun_bin() + " " + base + " --json-schema-file " + quoted((dir / "none.json").string()));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("none.json"), std::string::npos) << missing.out;
}

// --grammar / --grammar-file: the reply is text of the GBNF grammar; a grammar qrun cannot
// read is an error naming the line and column; one constraint at a time.
TEST(QrunGeneration, GrammarConstrainsTheReply) {
  const std::string gbnf = "root ::= \" \" [A-Z] [a-z]+ (\" \" [a-z]+){1,3} \".\"";
  const std::string base = "-m " + quoted(model(DType::Q8)) + " -p 'Tim liked' --no-display-prompt -n 60 --temp 1 -t 1";
  test::ScratchDir dir;
  {
    std::ofstream f(dir / "g.gbnf");
    f << gbnf << "\n";
  }
  for (int seed = 1; seed <= 2; ++seed)
    for (const std::string& flag : {"--grammar " + quoted(gbnf), "--grammar-file " + quoted((dir / "g.gbnf").string())}) {
      std::string out = stdout_of(base + " " + flag + " --seed " + std::to_string(seed));
      ASSERT_FALSE(out.empty());
      out.pop_back();  // qrun's closing newline
      EXPECT_TRUE(GrammarPrefix(gbnf_grammar(gbnf)).feed(std::string_view(out))) << out;
    }
  const auto bad = run_command(qrun_bin() + " " + base + " --grammar 'root ::= \"a\"\nroot ::= \"b\"'");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("--grammar: GBNF grammar at line"), std::string::npos) << bad.out;
  const auto both = run_command(qrun_bin() + " " + base + " --json --grammar 'root ::= \"a\"'");
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.out.find("excludes"), std::string::npos) << both.out;
}

// -r: generation stops where the text reaches the reverse prompt, which is not printed.
TEST(QrunGeneration, ReversePromptStopsTheText) {
  const auto c = test::load_golden()[0];
  const std::string stop = "Lily";
  const size_t at = c.greedy_text.find(stop);
  ASSERT_NE(at, std::string::npos);
  const std::string out = stdout_of("-m " + quoted(model(DType::F32)) + " -p " + quoted(c.prompt) + " -r " + stop +
                                    " -n 100 --temp 0 -t 1");
  EXPECT_EQ(out, c.prompt + c.greedy_text.substr(0, at) + "\n");
}

TEST(QrunGeneration, FullContextShiftsByDefaultOrStopsWithAMessage) {
  const std::string base = "-m " + quoted(model(DType::Q8)) + " -p 'Once upon a time' -c 16 -n 60 --ignore-eos --temp 0 -t 1";
  const auto shifted = run_command(qrun_bin() + " " + base);
  ASSERT_EQ(shifted.exit_code, 0) << shifted.out;
  EXPECT_NE(shifted.out.find("/    59 runs"), std::string::npos) << shifted.out;
  const auto stopped = run_command(qrun_bin() + " " + base + " --no-context-shift");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.out;
  EXPECT_NE(stopped.out.find("context full (16 tokens)"), std::string::npos) << stopped.out;
}

TEST(QrunGeneration, WarnsWhenTheContextExceedsTraining) {
  const auto r = run_command(qrun_bin() + " -m " + quoted(model(DType::Q8)) + " -p Once -n 1 -c 1024");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("warning: context 1024 is longer than the 512 tokens the model was trained on"),
            std::string::npos) << r.out;
  EXPECT_EQ(run_command(qrun_bin() + " -m " + quoted(model(DType::Q8)) + " -p Once -n 1").out.find("warning"),
            std::string::npos);
}

// --chat-template FILE reads the file; --chat echoes what the user wrote, not the markup.
TEST(QrunGeneration, ChatTemplateFromAFile) {
  test::ScratchDir dir;
  test::write_text(dir / "chatml.jinja", kChatml);
  const auto r = run_command(qrun_bin() + " -m " + quoted(model(DType::Q8)) + " --chat --chat-template " +
                             quoted((dir / "chatml.jinja").string()) + " -p 'Tell me a story' -n 4 --verbose-prompt");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("'im'"), std::string::npos) << "the template's markup is not in the prompt:\n" << r.out;
  EXPECT_EQ(r.out.find("<|im_start|>"), std::string::npos) << "the markup was echoed:\n" << r.out;
  EXPECT_EQ(r.out.find("jinja"), std::string::npos) << "the path became the template:\n" << r.out;
  const auto missing = run_command(qrun_bin() + " -m " + quoted(model(DType::Q8)) + " --chat --chat-template " +
                                   quoted((dir / "nope.jinja").string()) + " -p hi");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("nope.jinja"), std::string::npos) << missing.out;
}

// --chat-template-kwargs sets template variables (Qwen3's enable_thinking); one that is
// not a JSON object is an error naming it.
TEST(QrunGeneration, ChatTemplateKwargs) {
  const std::string tmpl = "{% for m in messages %}{{ m.content }}{% endfor %}{% if enable_thinking is false %}"
                           "{{ \" no thinking\" }}{% endif %}";
  const std::string base = qrun_bin() + " -m " + quoted(model(DType::Q8)) + " --chat --chat-template " + quoted(tmpl) +
                           " -p Once -n 1 --verbose-prompt --chat-template-kwargs ";
  const auto prompt_tokens = [](const std::string& out) {  // --verbose-prompt's "prompt: N tokens"
    const size_t at = out.find("prompt: ");
    return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + 8);
  };
  const auto off = run_command(base + quoted(R"({"enable_thinking": false})"));
  ASSERT_EQ(off.exit_code, 0) << off.out;
  const auto on = run_command(base + quoted("{}"));
  ASSERT_EQ(on.exit_code, 0) << on.out;
  EXPECT_EQ(prompt_tokens(on.out), 2) << on.out;  // BOS, "Once"
  EXPECT_GT(prompt_tokens(off.out), 2) << off.out;
  const auto bad = run_command(base + quoted("[false]"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("chat template kwargs: must be a JSON object"), std::string::npos) << bad.out;
}

// -f reads the prompt as -p would take it: the newline that ends the file is not part of
// it (as llama.cpp's -f), so the continuation is the same.
TEST(QrunGeneration, PromptFileIsThePromptWithoutItsLastNewline) {
  test::ScratchDir dir;
  const auto c = test::load_golden()[0];
  test::write_text(dir / "prompt.txt", c.prompt + "\n");
  const std::string flags = " -m " + quoted(model(DType::F32)) + " -n 16 --temp 0 -t 1 --verbose-prompt";
  const auto from_file = run_command(qrun_bin() + flags + " -f " + quoted((dir / "prompt.txt").string()));
  const auto typed = run_command(qrun_bin() + flags + " -p " + quoted(c.prompt));
  ASSERT_EQ(from_file.exit_code, 0) << from_file.out;
  ASSERT_EQ(typed.exit_code, 0) << typed.out;
  auto text = [](const std::string& out) { return out.substr(0, out.find("load time")); };
  EXPECT_EQ(text(from_file.out), text(typed.out));
  EXPECT_EQ(from_file.out.find("<0x0A>"), std::string::npos) << from_file.out;
}

TEST(ToolUsage, BadFlagsExitTwoHelpExitsZero) {
  for (const char* tool : {"qrun", "qconvert", "qtok", "qppl", "qserve"}) {
    const std::string bin = (test::bin_dir() / tool).string();
    if (!std::filesystem::exists(bin)) continue;  // qserve needs cpp-httplib
    EXPECT_EQ(run_command(bin + " --no-such-flag").exit_code, 2) << tool;
    EXPECT_EQ(run_command(bin + " --help").exit_code, 0) << tool;
  }
  EXPECT_EQ(run_command(qrun_bin() + " -m x -p hi -t abc").exit_code, 2);
}

TEST(ToolUsage, QtokRefusesIdsOutsideTheVocabulary) {
  const std::string qtok = (test::bin_dir() / "qtok").string() + " -m " + quoted(model(DType::Q8)) + " --decode";
  const auto ok = run_command(qtok + " -p '1 403 407'");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  for (const char* ids : {"'1 403 512'", "'1 -1'", "'1 99999999999'"}) {
    const auto r = run_command(qtok + " -p " + ids);
    EXPECT_EQ(r.exit_code, 1) << ids << ": " << r.out;
    EXPECT_NE(r.out.find("--decode"), std::string::npos) << r.out;
  }
}

// Ctrl-C stops the generation and the timings still print.
TEST(QrunInterrupt, CtrlCStopsGenerationAndPrintsTimings) {
  test::ChildProcess qrun({qrun_bin(), "-m", model(DType::Q8), "-p", "Once upon a time", "-n", "-1", "--ignore-eos",
                           "--temp", "0", "-t", "1"});
  ASSERT_TRUE(qrun.started());
  qrun.read_bytes(64);  // generating (the output pipe holds one page: it cannot have finished)
  qrun.signal(SIGINT);
  const std::string out = qrun.read_to_end();
  const int status = qrun.wait();
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_NE(out.find("eval time"), std::string::npos) << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
}

// qrun -cnv on the Q8 story model, greedy on one thread with --verbose, `args` added and
// `input` piped: its output, once it exited 0.
std::string conversation(std::vector<std::string> args, const std::string& input) {
  std::vector<std::string> argv = {qrun_bin(), "-m", model(DType::Q8), "-cnv", "--temp", "0", "-t", "1", "--verbose"};
  argv.insert(argv.end(), args.begin(), args.end());
  test::ChildProcess qrun(argv, &input);
  EXPECT_TRUE(qrun.started());
  const std::string out = qrun.read_to_end();
  const int status = qrun.wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  return out;
}

// Each turn's prompt tokens evaluated and reused from the cache, as --verbose prints them.
std::vector<std::pair<int, int>> turn_counts(const std::string& out) {
  std::vector<std::pair<int, int>> turns;
  const std::regex turn_line("turn \\d: (\\d+) prompt tokens evaluated, (\\d+) reused");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), turn_line); it != std::sregex_iterator(); ++it)
    turns.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  return turns;
}

// -cnv with turns piped on stdin: each turn evaluates only what it adds, an empty line
// is no turn, EOF ends with the timings.
TEST(QrunConversation, PipedTurnsReuseTheCache) {
  const std::string out = conversation({"--chat-template", kChatml, "-sys", "You tell stories.", "-n", "12"},
                                       "Once upon a time\n\nThe dog ran to the park\nLily was happy\n");
  const auto turns = turn_counts(out);
  ASSERT_EQ(turns.size(), 3u) << out;
  EXPECT_NE(out.find("turn 3:"), std::string::npos) << out;
  EXPECT_EQ(out.find("turn 4:"), std::string::npos) << out;
  EXPECT_EQ(turns[0].second, 0);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(turns[i].second, turns[i - 1].first + turns[i - 1].second + 11) << "turn " << i + 1 << ":\n" << out;
    EXPECT_LT(turns[i].first, turns[i].second) << "turn " << i + 1 << " evaluated the whole conversation:\n" << out;
  }
  EXPECT_NE(out.find("eval time"), std::string::npos) << out;
  EXPECT_EQ(out.find("<|im_start|>"), std::string::npos) << out;
}

// A template that writes past replies otherwise than they were generated (Qwen3's and
// gpt-oss's drop their reasoning; this one drops them whole): each turn runs the whole
// conversation as its prompt, keeping the cached prompt of the turn before and
// re-running from its reply, never feeding the conversation again after the cache.
TEST(QrunConversation, RewrittenTurnsRunTheConversationAnew) {
  const char* rewriting =
      "{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}{{ '<|im_start|>assistant\\n(a reply)<|im_end|>\\n' }}"
      "{% else %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const std::string out =
      conversation({"--chat-template", rewriting, "-n", "12"}, "Once upon a time\nThe dog ran to the park\nLily was happy\n");
  const auto turns = turn_counts(out);
  ASSERT_EQ(turns.size(), 3u) << out;
  EXPECT_EQ(turns[0].second, 0);
  for (size_t i = 1; i < 3; ++i)
    EXPECT_EQ(turns[i].second, turns[i - 1].first + turns[i - 1].second) << "turn " << i + 1 << ":\n" << out;
}

// gpt-oss's channels (held to them by a grammar here: stories260K does not write them):
// the analysis is shown, then a blank line and the answer, without the headers; the
// next turn runs the conversation as the template writes it, without that analysis.
TEST(QrunConversation, HarmonyRepliesShowReasoningThenAnswer) {
  const char* harmony =
      "{%- for m in messages -%}{%- if m.role == 'assistant' %}<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>"
      "{%- else %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{%- endif -%}{%- endfor -%}"
      "{%- if add_generation_prompt %}<|start|>assistant{% endif -%}";
  const char* grammar = R"(root ::= "<|channel|>analysis<|message|>" [a-z ]{3,30} )"
                        R"("<|end|><|start|>assistant<|channel|>final<|message|>" [a-z ]{3,30})";
  const std::string out =
      conversation({"--chat-template", harmony, "--grammar", grammar, "-n", "300"}, "Once upon a time\nThe dog ran\n");
  EXPECT_EQ(out.find("<|"), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\n[a-z ]{3,30}\n\n[a-z ]{3,30}\nqrun: turn 1:"))) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("turn 1: (\\d+) prompt tokens evaluated, 0 reused from the cache, (\\d+) generated"))) << out;
  const int prompt1 = std::stoi(m[1]), generated1 = std::stoi(m[2]);
  ASSERT_TRUE(std::regex_search(out, m, std::regex("turn 2: \\d+ prompt tokens evaluated, (\\d+) reused"))) << out;
  EXPECT_GE(std::stoi(m[1]), prompt1) << out;
  EXPECT_LT(std::stoi(m[1]), prompt1 + generated1 / 2) << out;
  // One turn (--chat) shows it the same way.
  const std::string one = stdout_of("-m " + quoted(model(DType::Q8)) + " --chat -p 'Once upon a time' --chat-template " +
                                    quoted(harmony) + " --grammar " + quoted(grammar) + " -n 300 --temp 0 -t 1");
  EXPECT_TRUE(std::regex_match(one, std::regex("Once upon a time\n[a-z ]{3,30}\n\n[a-z ]{3,30}\n"))) << one;
}

// Ctrl-C during a reply ends that reply; the next turn is answered; EOF ends cleanly.
TEST(QrunConversation, CtrlCEndsTheReplyNotTheConversation) {
  const std::string input = "Once upon a time\nThe dog ran\n";
  test::ChildProcess qrun({qrun_bin(), "-m", model(DType::Q8), "-cnv", "--chat-template", kChatml, "-n", "-1",
                           "--ignore-eos", "--temp", "0", "-t", "1", "--verbose"},
                          &input);
  ASSERT_TRUE(qrun.started());
  qrun.read_bytes(64);
  qrun.signal(SIGINT);
  qrun.read_until("turn 1:");
  const size_t after_turn1 = qrun.output().size();
  qrun.read_bytes(after_turn1 + 64);  // turn 2 generating
  qrun.signal(SIGINT);
  const std::string out = qrun.read_to_end();
  const int status = qrun.wait();
  ASSERT_TRUE(WIFEXITED(status)) << out.substr(0, 2000);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(out.find("turn 2:"), std::string::npos);
  EXPECT_NE(out.find("eval time"), std::string::npos);
}

}  // namespace
}  // namespace qrun
