// A thinking model's <think> (or Mistral's [THINK]) block
// read apart from its answer, whole and as it streams.
#include <gtest/gtest.h>

#include <random>

#include "src/server/reasoning.h"

namespace qrun::server {
namespace {

// A reply fed to a ReasoningStream in pieces of `step` bytes: what it sent, finish() included.
ReasoningSplit streamed(const std::string& reply, size_t step, ThinkTags tags) {
  ReasoningStream stream(false, tags);
  ReasoningSplit sent;
  for (size_t at = 0; at < reply.size(); at += step) sent.append(stream.feed(std::string_view(reply).substr(at, step)));
  sent.append(stream.finish());
  return sent;
}

TEST(Reasoning, ThinkBlockIsReadApartFromTheAnswer) {
  struct Case {
    const char* reply;
    const char* reasoning;
    const char* content;
  };
  const Case cases[] = {
      {"<think>\nThe user greets me.\n\nI greet back.\n</think>\n\nHello!", "The user greets me.\n\nI greet back.", "Hello!"},
      // Whitespace before the block; a tool call after it stays in the content.
      {"\n <think>x</think><tool_call>\n{}\n</tool_call>", "x", "<tool_call>\n{}\n</tool_call>"},
      // Qwen3 with enable_thinking false: the prompt holds an empty block, the reply is the answer.
      {"Hello <think> there", "", "Hello <think> there"},
      // A block that never closes (the reply ran out of tokens) is all reasoning.
      {"<think>\nStill thinking ", "Still thinking", ""},
      {"<think>\n\n</think>\n\nHi", "", "Hi"},  // an empty block
  };
  for (const Case& c : cases) {
    const ReasoningSplit s = split_reasoning(c.reply, false);
    EXPECT_EQ(s.reasoning, c.reasoning) << c.reply;
    EXPECT_EQ(s.content, c.content) << c.reply;
  }
}

TEST(Reasoning, APromptThatOpensTheBlockStartsTheReplyInside) {
  EXPECT_TRUE(prompt_opens_thinking("<|User|>Hi<|Assistant|><think>\n"));
  EXPECT_TRUE(prompt_opens_thinking("<|im_start|>assistant\n<think>"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>user\n<think><|im_end|>\n<|im_start|>assistant\n"));
  const ReasoningSplit s = split_reasoning("Two plus two.\n</think>\n\n4", true);
  EXPECT_EQ(s.reasoning, "Two plus two.");
  EXPECT_EQ(s.content, "4");
  EXPECT_EQ(split_reasoning("no end", true).reasoning, "no end");
  // A model that opens the block the prompt opened: its tag is not reasoning.
  const ReasoningSplit again = split_reasoning("\n<think>\nagain\n</think>\n\nok", true);
  EXPECT_EQ(again.reasoning, "again");
  EXPECT_EQ(again.content, "ok");
}

// Mistral's reasoning models write [THINK] ... [/THINK] (their templates show [THINK]);
// the same reading, whole and streamed, and <think> is then text.
TEST(Reasoning, MistralsThinkTags) {
  EXPECT_EQ(think_tags("{%- if c.type == 'thinking' %}{{ '[THINK]' + c.thinking + '[/THINK]' }}").open, "[THINK]");
  EXPECT_EQ(think_tags("{{ '<think>' }}").open, "<think>");
  EXPECT_EQ(think_tags("{{ m.content }}").close, "</think>");
  const std::string reply = "[THINK]Two and two.[/THINK]\n\n4 <think>";
  const ReasoningSplit s = split_reasoning(reply, false, kMistralThinkTags);
  EXPECT_EQ(s.reasoning, "Two and two.");
  EXPECT_EQ(s.content, "4 <think>");
  EXPECT_EQ(split_reasoning(reply, false).content, reply);  // not a <think> block
  EXPECT_TRUE(prompt_opens_thinking("[INST]Hi[/INST][THINK]", kMistralThinkTags));
  EXPECT_FALSE(prompt_opens_thinking("[INST]Hi[/INST][THINK]"));
  for (size_t step = 1; step <= reply.size(); ++step) {
    const ReasoningSplit sent = streamed(reply, step, kMistralThinkTags);
    EXPECT_EQ(sent.reasoning, s.reasoning) << step;
    EXPECT_EQ(sent.content, s.content) << step;
  }
}

TEST(Reasoning, FormatNamesAsLlamaCppHasThem) {
  bool separate = false;
  EXPECT_TRUE(parse_reasoning_format("deepseek", &separate) && separate);
  EXPECT_TRUE(parse_reasoning_format("auto", &separate) && separate);
  EXPECT_TRUE(parse_reasoning_format("none", &separate) && !separate);
  EXPECT_FALSE(parse_reasoning_format("DeepSeek", &separate));
  EXPECT_FALSE(parse_reasoning_format("", &separate));
}

// Every reply cut into pieces of every size (and at random places): the streamed pieces
// of each part add up to the whole split, and nothing goes out before it is decided.
TEST(Reasoning, StreamedPiecesAddUpToTheWholeSplit) {
  const char* replies[] = {
      "<think>\nThe user greets me.\n\nI greet back.\n</think>\n\nHello!",
      "  \n<think>a</think>b",
      "<think></think>",
      "<think>\n\n</think>\n\n",
      "<think> a </thin k> b </think>  c  d ",
      "<think>unclosed  \n </thi",
      "<thinking>is not the tag</thinking>",
      "<thi",
      "   ",
      "",
      "Plain answer with </think> in it",
      "<think>x</think></think> y",
      "<think><think>nested?</think>\n\n\n",
      " \n<think>\nagain\n</think>\n\nok",
      "<thi<think>",
  };
  std::mt19937 rng(7);
  for (const char* reply_text : replies) {
    const std::string reply = reply_text;
    for (const bool inside : {false, true}) {
      const ReasoningSplit whole = split_reasoning(reply, inside);
      for (size_t step = 0; step <= reply.size() + 1; ++step) {
        ReasoningStream stream(inside);
        ReasoningSplit sent;
        size_t at = 0;
        while (at < reply.size()) {
          const size_t n = step > 0 ? step : 1 + rng() % 4;
          const ReasoningSplit piece = stream.feed(std::string_view(reply).substr(at, n));
          sent.reasoning += piece.reasoning;
          sent.content += piece.content;
          // What went out is the start of the final split.
          EXPECT_EQ(whole.reasoning.compare(0, sent.reasoning.size(), sent.reasoning), 0) << reply;
          EXPECT_EQ(whole.content.compare(0, sent.content.size(), sent.content), 0) << reply;
          at += n;
        }
        const ReasoningSplit rest = stream.finish();
        EXPECT_EQ(sent.reasoning + rest.reasoning, whole.reasoning) << "'" << reply << "' inside " << inside << " step " << step;
        EXPECT_EQ(sent.content + rest.content, whole.content) << "'" << reply << "' inside " << inside << " step " << step;
      }
    }
  }
}

// A stream sends the reasoning while it is written, not at the end.
TEST(Reasoning, ReasoningStreamsAsItIsWritten) {
  ReasoningStream stream(false);
  EXPECT_EQ(stream.feed("<thi").reasoning, "");
  EXPECT_EQ(stream.feed("nk>\nFirst").reasoning, "First");
  EXPECT_EQ(stream.feed(" step.\n").reasoning, " step.");
  EXPECT_EQ(stream.feed("</").reasoning, "");
  const ReasoningSplit end = stream.feed("think>\n\nAnswer");
  EXPECT_EQ(end.reasoning, "");
  EXPECT_EQ(end.content, "Answer");
  EXPECT_EQ(stream.feed(" more").content, " more");
}

}  // namespace
}  // namespace qrun::server
