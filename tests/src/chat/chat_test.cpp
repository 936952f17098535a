// Multi-turn chat on a template: what each turn feeds the model, and --chat-template's
// FILE_OR_TEXT.
#include "qrun/chat.h"

#include <gtest/gtest.h>

#include "common/model_fixture.h"
#include "common/test_paths.h"
#include "qrun/error.h"
#include "qrun/model_file.h"

#include <nlohmann/json.hpp>

namespace qrun {
namespace {

const char* kChatml =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// Llama 2's: the system turn folds into the first user turn and replies are trimmed.
const char* kLlama2 =
    "{% if messages[0]['role'] == 'system' %}{% set sys = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}"
    "{% set msgs = messages[1:] %}{% else %}{% set sys = '' %}{% set msgs = messages %}{% endif %}"
    "{% for m in msgs %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + (sys if loop.first else '') + "
    "m['content'] | trim + ' [/INST]' }}{% else %}{{ ' ' + m['content'] | trim + ' ' + eos_token }}{% endif %}"
    "{% endfor %}";

const Tokenizer& stories_tokenizer() {
  static const Tokenizer tok(deserialize_tokenizer(ModelFile(test::converted_stories(DType::Q8).string())));
  return tok;
}

// Feeding each turn's text after the replies gives exactly the template's rendering of
// the whole conversation: the cache holds what a one-shot prompt would.
TEST(ChatHistory, TurnsFeedExactlyTheWholeConversation) {
  for (const char* tmpl : {kChatml, kLlama2}) {
    const ChatFormatter fmt(stories_tokenizer(), tmpl);
    ChatHistory h(fmt, "Be brief.");
    std::string fed = h.add_user("Hi there");
    EXPECT_EQ(fed, fmt.render(h.messages(), true));
    const std::string reply1 = " Hello! How can I help?";  // as decoded after the header
    fed += reply1;
    h.add_assistant(reply1);
    const std::string turn2 = h.add_user("Tell me a story");
    fed += turn2;
    EXPECT_EQ(fed, fmt.render(h.messages(), true)) << tmpl;
    EXPECT_EQ(turn2.find("Hi there"), std::string::npos) << "turn 2 repeats turn 1: " << turn2;
  }
}

// Qwen3's template drops a past reply's reasoning once a later question follows: the
// cache then holds a conversation the template no longer writes, so the next turn is the
// whole rendering (to run as the prompt), not that rendering fed after the cache again.
TEST(ChatHistory, ATemplateThatRewritesEarlierTurnsGetsTheWholeConversation) {
  const auto config = test::shared_dir() / "tokenizers" / "qwen3" / "tokenizer_config.json";
  const std::string qwen3 = nlohmann::json::parse(test::read_text(config)).at("chat_template").get<std::string>();
  const ChatFormatter fmt(stories_tokenizer(), qwen3);
  ChatHistory h(fmt, "");
  h.add_user("Hi there");
  EXPECT_FALSE(h.rewrote());
  h.add_assistant("Hello.");  // no reasoning: written back as it was fed
  EXPECT_EQ(h.add_user("And?"), "<|im_end|>\n<|im_start|>user\nAnd?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_FALSE(h.rewrote());
  h.add_assistant("<think>\nhmm\n</think>\n\nSure.");
  const std::string turn3 = h.add_user("Bye");
  EXPECT_TRUE(h.rewrote());
  EXPECT_EQ(turn3, fmt.render(h.messages(), true));
  EXPECT_EQ(turn3.find("hmm"), std::string::npos);
  // Its answer and reasoning given apart reach the template as content and reasoning.
  ChatHistory parts(fmt, "");
  parts.add_user("Hi");
  parts.add_assistant("<think>x</think>Yes.", "Yes.", "x");
  EXPECT_EQ(parts.messages().back().content, "Yes.");
  EXPECT_EQ(parts.messages().back().reasoning_content, "x");
}

TEST(ChatFormatter, AddsBosOnlyWhereTheTemplateDoesNot) {
  const Tokenizer& tok = stories_tokenizer();
  const ChatFormatter chatml(tok, kChatml), llama2(tok, kLlama2);
  const std::vector<ChatMessage> msgs = {{"user", "hi"}};
  const auto a = chatml.encode(chatml.render(msgs, true), true);
  const auto b = llama2.encode(llama2.render(msgs, true), true);
  EXPECT_EQ(a.front(), tok.bos_id());
  EXPECT_EQ(b.front(), tok.bos_id());
  EXPECT_NE(b[1], tok.bos_id()) << "BOS twice";
  EXPECT_NE(chatml.encode("x", false).front(), tok.bos_id());
}

// The tokens fed turn by turn are the whole conversation's: a later turn continues the
// text, so SentencePiece's dummy-prefix space must not start it (it did: one stray "\u2581"
// token per turn, and other replies than the one-shot prompt gets).
TEST(ChatFormatter, LaterTurnsEncodeAsPartOfTheWhole) {
  const Tokenizer& tok = stories_tokenizer();
  for (const char* tmpl : {kChatml, kLlama2}) {
    const ChatFormatter fmt(tok, tmpl);
    ChatHistory h(fmt, "Be brief.");
    std::vector<int32_t> fed = fmt.encode(h.add_user("Hi there"), true);
    const std::string reply = " Hello! How can I help?";  // as the model's tokens decode
    const std::vector<int32_t> reply_ids = tok.encode_continuation(reply, false);
    fed.insert(fed.end(), reply_ids.begin(), reply_ids.end());
    h.add_assistant(reply);
    const std::vector<int32_t> turn2 = fmt.encode(h.add_user("Tell me a story"), false);
    fed.insert(fed.end(), turn2.begin(), turn2.end());
    EXPECT_EQ(fed, fmt.encode(fmt.render(h.messages(), true), true)) << tmpl;
  }
  const std::vector<int32_t> hi = tok.encode_continuation("Hi", false);
  ASSERT_FALSE(hi.empty());
  EXPECT_NE(tok.piece(hi.front()).substr(0, 3), "\xE2\x96\x81");  // no dummy-prefix space
}

TEST(ChatFormatter, NoTemplateIsAClearError) {
  try {
    ChatFormatter(stories_tokenizer(), resolve_chat_template(stories_tokenizer(), ""));
    FAIL() << "stories260K has no chat template";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--chat-template"), std::string::npos) << e.what();
  }
}

TEST(ChatTemplateArgument, AFileGivesItsContentsAnythingElseIsTheText) {
  test::ScratchDir dir;
  const auto path = dir / "t.jinja";
  test::write_text(path, kChatml);
  EXPECT_EQ(resolve_chat_template(stories_tokenizer(), path.string()), kChatml);
  EXPECT_EQ(resolve_chat_template(stories_tokenizer(), kChatml), kChatml);
  try {
    resolve_chat_template(stories_tokenizer(), (dir / "missing.jinja").string());
    FAIL() << "a missing file became the template";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.jinja"), std::string::npos) << e.what();
  }
}

// The formatter's kwargs (qrun/qserve --chat-template-kwargs) reach every rendering; a
// call's (a request's chat_template_kwargs) replace them key by key.
TEST(ChatFormatter, KwargsMergeKeyByKey) {
  const std::string tmpl = "{{ a }}-{{ b }}{% for m in messages %}{{ m.content }}{% endfor %}";
  const ChatFormatter fmt(stories_tokenizer(), tmpl, R"({"a": 1, "b": "x"})");
  const std::vector<ChatMessage> msgs = {{"user", "U"}};
  EXPECT_EQ(fmt.render(msgs, false), "1-xU");
  EXPECT_EQ(fmt.render(msgs, false, "", R"({"b": [2]})"), "1-[2]U");
  EXPECT_THROW(ChatFormatter(stories_tokenizer(), tmpl, "true"), Error);
  EXPECT_THROW(fmt.render(msgs, false, "", "nope"), Error);
}

}  // namespace
}  // namespace qrun
