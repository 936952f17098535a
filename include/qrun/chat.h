// Conversations on a model's chat template: render messages to the prompt text the
// model was trained on, encode it, and, for a multi-turn chat over one KV cache, find
// the text each new turn adds after what the cache already holds.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qrun/chat_template.h"
#include "qrun/tokenizer.h"

namespace qrun {

// --chat-template FILE_OR_TEXT: text with Jinja tags ({{ or {%) is the template itself,
// anything else is a file to read (an error naming it when it cannot be read); empty
// gives the model's own template.
std::string resolve_chat_template(const Tokenizer& tok, const std::string& file_or_text);

class ChatFormatter {
 public:
  // Throws when tmpl is empty (the model has no template and none was given), or when
  // kwargs_json (more template variables, see apply_chat_template) is not a JSON object.
  ChatFormatter(const Tokenizer& tok, std::string tmpl, const std::string& kwargs_json = {});

  // tools_json: OpenAI's tools list as JSON text ("" for none); kwargs_json: variables
  // that add to (or replace, key by key) the formatter's own.
  std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt,
                     const std::string& tools_json = {}, const std::string& kwargs_json = {}) const;
  const std::string& template_text() const { return tmpl_; }
  // Special-token text becomes special tokens; at the start of a conversation BOS is
  // added unless the template already wrote it.
  std::vector<int32_t> encode(const std::string& text, bool conversation_start) const;
  const Tokenizer& tokenizer() const { return tok_; }

 private:
  const Tokenizer& tok_;
  std::string tmpl_;
  std::string kwargs_;  // a JSON object's text, or ""
  std::string bos_, eos_;
};

// The messages of one conversation and the text fed to the model so far.
class ChatHistory {
 public:
  ChatHistory(const ChatFormatter& fmt, const std::string& system_prompt);

  // Adds a user turn; returns the text to feed next: the template's rendering of the
  // conversation (ending with the assistant's header) minus what was fed before. Where the
  // template writes an earlier turn otherwise than it was fed (Qwen3's and gpt-oss's drop
  // the reasoning of past replies, Llama 2's trims them), it is the whole rendering and
  // rewrote() is true: run it as the prompt (generate() keeps the cache's common prefix),
  // not after the cache, so the model sees what a one-shot prompt would give it.
  std::string add_user(const std::string& text);
  bool rewrote() const { return rewrote_; }
  // Adds the reply the model generated (as decoded after the assistant's header).
  void add_assistant(const std::string& reply);
  // The same for a reply read into its parts (gpt-oss's channels): the template is given
  // `answer` and `reasoning`; `reply` is what was fed.
  void add_assistant(const std::string& reply, const std::string& answer, const std::string& reasoning);
  bool at_start() const { return fed_.empty(); }
  const std::vector<ChatMessage>& messages() const { return messages_; }

 private:
  const ChatFormatter& fmt_;
  std::vector<ChatMessage> messages_;
  std::string fed_;
  bool rewrote_ = false;
};

}  // namespace qrun
