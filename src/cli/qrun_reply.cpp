#include "src/cli/qrun_reply.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>

#include "qrun/chat.h"
#include "qrun/error.h"
#include "qrun/stop_strings.h"
#include "src/chat/harmony_reply.h"
#include "src/cli/cli_common.h"

namespace qrun::cli {

namespace {

void print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

enum class Input { Line, EndOfInput, Interrupted };

// One user turn from stdin. getline() returns on Ctrl-C (SIGINT has no SA_RESTART).
Input read_turn(std::string& out) {
  out.clear();
  char* buf = nullptr;
  size_t cap = 0;
  Input result = Input::Line;
  while (true) {
    errno = 0;
    const ssize_t n = getline(&buf, &cap, stdin);
    if (take_interrupt()) {
      result = Input::Interrupted;
      break;
    }
    if (n < 0) {
      if (errno == EINTR) {
        clearerr(stdin);
        continue;
      }
      result = out.empty() ? Input::EndOfInput : Input::Line;
      break;
    }
    std::string line(buf, static_cast<size_t>(n));
    if (!line.empty() && line.back() == '\n') line.pop_back();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line.back() == '\\') {  // continues on the next line
      line.pop_back();
      out += line + "\n";
      continue;
    }
    out += line;
    break;
  }
  std::free(buf);
  return result;
}

}  // namespace

Reply stream_reply(Model& model, std::span<const int32_t> prompt, Sampler& sampler, const GenerateOptions& options,
                   const std::vector<std::string>& reverse_prompts, const ReplyDisplay& display) {
  Reply r;
  ReplyText reply(model.tokenizer(), reverse_prompts, display.kept);
  const auto show = display.show ? display.show : print;
  r.stats = generate(model, prompt, sampler, options, [&](int32_t id) {
    const std::string text = reply.push(id);
    r.text += text;
    show(text);
    if (take_interrupt()) {
      r.interrupted = true;
      return false;
    }
    return !reply.stopped();
  });
  const std::string tail = reply.finish();
  r.text += tail;
  show(tail);
  return r;
}

namespace {

// gpt-oss's reply as it streams: its analysis (dimmed on a terminal), then its answer.
class HarmonyPrinter {
 public:
  explicit HarmonyPrinter(bool styled) : styled_(styled) {}
  void feed(const std::string& text) { show(stream_.feed(text)); }
  ReplyParts finish() {
    HarmonyReply rest = stream_.finish();
    show({std::move(rest.reasoning), std::move(rest.content)});
    if (in_reasoning_ && styled_) print(kPlain);
    return std::move(shown_);
  }

 private:
  static constexpr const char* kDim = "\033[2m";
  static constexpr const char* kPlain = "\033[0m";
  void show(const ReplyParts& p) {
    if (!p.reasoning.empty()) {
      if (!in_reasoning_ && styled_) print(kDim);
      in_reasoning_ = true;
      print(p.reasoning);
      shown_.reasoning += p.reasoning;
    }
    if (!p.content.empty()) {
      if (in_reasoning_) print(styled_ ? std::string(kPlain) + "\n\n" : "\n\n");
      in_reasoning_ = false;
      print(p.content);
      shown_.content += p.content;
    }
  }
  HarmonyStream stream_{HarmonyReading{true, false}};
  bool styled_;
  bool in_reasoning_ = false;
  ReplyParts shown_;
};

}  // namespace

Reply stream_chat_reply(Model& model, std::span<const int32_t> prompt, Sampler& sampler, const GenerateOptions& options,
                        const std::vector<std::string>& reverse_prompts, const ChatFormatter& fmt) {
  if (!writes_harmony(fmt.template_text())) {
    Reply r = stream_reply(model, prompt, sampler, options, reverse_prompts);
    r.answer = r.text;
    return r;
  }
  HarmonyPrinter printer(isatty(STDOUT_FILENO) != 0);
  const ReplyDisplay display{special_token_ids(model.tokenizer(), harmony_tokens()),
                             [&](const std::string& text) { printer.feed(text); }};
  Reply r = stream_reply(model, prompt, sampler, options, reverse_prompts, display);
  const ReplyParts parts = printer.finish();
  r.answer = parts.content;
  r.reasoning = parts.reasoning;
  return r;
}

static void say_context_full(const Model& model) {
  std::fprintf(stderr, "\nqrun: context full (%d tokens): the conversation ends here (drop --no-context-shift "
                       "to keep going, or raise -c)\n", model.context_length());
}

GenerationStats run_conversation(Model& model, Sampler& sampler, const GenerateOptions& options,
                                 const ConversationSettings& settings) {
  const Tokenizer& tok = model.tokenizer();
  const ChatFormatter fmt(tok, resolve_chat_template(tok, settings.chat_template), settings.chat_template_kwargs);
  ChatHistory history(fmt, settings.system_prompt);
  const bool interactive = isatty(STDIN_FILENO);
  int32_t pending = -1;  // the last reply's final token, not yet run through the model
  GenerationStats total;
  for (int turn = 1;;) {
    if (interactive) print("\n> ");
    std::string user;
    const Input in = read_turn(user);
    if (in == Input::EndOfInput) break;
    if (in == Input::Interrupted) {
      print("\n");
      break;
    }
    if (user.empty()) continue;
    const bool start = history.at_start();
    const std::string text = history.add_user(user);
    std::vector<int32_t> prompt;
    if (history.rewrote()) {
      // The whole conversation anew: generate() keeps the cache's common prefix.
      prompt = fmt.encode(text, true);
      if (static_cast<int>(prompt.size()) + 1 > model.context_length()) {
        std::fprintf(stderr, "\nqrun: context full (%d tokens): this chat template rewrites earlier turns, so the "
                             "conversation (%zu tokens) cannot shift; raise -c\n", model.context_length(), prompt.size());
        break;
      }
    } else {
      const std::vector<int32_t> added = fmt.encode(text, start);
      const int needed = (pending >= 0) + static_cast<int>(added.size()) + 1;
      if (options.context_shift) {
        total.context_shifts += make_room(model, needed, options.n_keep);
      } else if (model.position() + needed > model.context_length()) {
        say_context_full(model);
        break;
      }
      // What the cache holds, then what it lacks: generate() runs only the latter.
      prompt.assign(model.tokens().begin(), model.tokens().end());
      if (pending >= 0) prompt.push_back(pending);
      prompt.insert(prompt.end(), added.begin(), added.end());
    }
    if (options.constraint) options.constraint->reset();
    const Reply reply = stream_chat_reply(model, prompt, sampler, options, settings.reverse_prompts, fmt);
    print("\n");
    if (settings.verbose)
      std::fprintf(stderr, "qrun: turn %d: %d prompt tokens evaluated, %d reused from the cache, %d generated\n", turn,
                   reply.stats.prompt_tokens, reply.stats.reused_tokens, reply.stats.generated_tokens);
    total.add(reply.stats);
    ++turn;  // empty input lines are not turns
    history.add_assistant(reply.text, reply.answer, reply.reasoning);
    pending = reply.stats.pending_token;
    if (reply.stats.stop == StopReason::ContextFull) {
      say_context_full(model);
      break;
    }
  }
  return total;
}

}  // namespace qrun::cli
