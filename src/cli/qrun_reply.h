// qrun's text output: one reply generated and streamed to stdout as UTF-8, stopped by a
// reverse prompt or Ctrl-C; and the multi-turn conversation (-cnv) built on it, where
// gpt-oss's channels show as reasoning (dimmed on a terminal) and answer.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "qrun/chat.h"
#include "qrun/generate.h"
#include "qrun/model.h"
#include "qrun/sampler.h"

namespace qrun::cli {

struct Reply {
  GenerationStats stats;
  std::string text;          // as generated (without a reverse prompt that stopped it)
  bool interrupted = false;  // Ctrl-C
  std::string answer, reasoning;  // a chat reply's parts (stream_chat_reply)
};

// How a reply's text is shown: `kept`, special tokens whose text it keeps; `show`, what
// prints each piece (empty: as it is).
struct ReplyDisplay {
  std::vector<int32_t> kept;
  std::function<void(const std::string&)> show;
};

// Generates after `prompt` and prints the text as it comes. A reverse prompt is not
// printed; the text before it is.
Reply stream_reply(Model& model, std::span<const int32_t> prompt, Sampler& sampler, const GenerateOptions& options,
                   const std::vector<std::string>& reverse_prompts, const ReplyDisplay& display = {});

// A chat reply on `fmt`'s template: as stream_reply, or where the template writes
// gpt-oss's channels, the analysis (dimmed on a terminal), a blank line and the answer,
// without the channel headers; `answer` and `reasoning` are the parts the template is
// given back.
Reply stream_chat_reply(Model& model, std::span<const int32_t> prompt, Sampler& sampler, const GenerateOptions& options,
                        const std::vector<std::string>& reverse_prompts, const ChatFormatter& fmt);

struct ConversationSettings {
  std::string chat_template;  // --chat-template FILE_OR_TEXT (empty: the model's)
  std::string chat_template_kwargs;  // --chat-template-kwargs JSON (empty: none)
  std::string system_prompt;
  std::vector<std::string> reverse_prompts;
  bool verbose = false;
};

// Reads user turns from stdin (a line each; a trailing backslash continues the line)
// until EOF or Ctrl-C at the prompt, and answers each on the model's chat template,
// evaluating only the tokens each turn adds. Ctrl-C during a reply ends the reply.
// Returns the statistics summed over all turns.
GenerationStats run_conversation(Model& model, Sampler& sampler, const GenerateOptions& options,
                                 const ConversationSettings& settings);

}  // namespace qrun::cli
