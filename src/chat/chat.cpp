#include "qrun/chat.h"

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "src/format/text_file.h"

namespace qrun {

std::string resolve_chat_template(const Tokenizer& tok, const std::string& file_or_text) {
  if (file_or_text.empty()) return tok.chat_template();
  // Template text has Jinja tags; anything else must name a file, or a typo in a path
  // would become a "template" that renders as the path.
  if (file_or_text.find("{{") != std::string::npos || file_or_text.find("{%") != std::string::npos)
    return file_or_text;
  return read_text_file(file_or_text, "chat template file");
}

namespace {

// A JSON object's text, or "" for none; throws naming what it is.
nlohmann::ordered_json kwargs_object(const std::string& text) {
  if (text.empty()) return nlohmann::ordered_json::object();
  const auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (!j.is_object()) throw Error("chat template kwargs: must be a JSON object, not: " + text.substr(0, 80));
  return j;
}

}  // namespace

ChatFormatter::ChatFormatter(const Tokenizer& tok, std::string tmpl, const std::string& kwargs_json)
    : tok_(tok), tmpl_(std::move(tmpl)), kwargs_(kwargs_json) {
  if (tmpl_.empty()) throw Error("this model has no chat template; give one with --chat-template");
  kwargs_object(kwargs_);
  check_chat_template(tmpl_);  // a broken template fails at start, not at every turn
  if (tok.bos_id() >= 0) bos_ = tok.piece(tok.bos_id());
  const auto eos = tok.eos_ids();
  if (!eos.empty()) eos_ = tok.piece(eos[0]);
}

std::string ChatFormatter::render(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                  const std::string& tools_json, const std::string& kwargs_json) const {
  std::string kwargs = kwargs_;
  if (!kwargs_json.empty()) {
    nlohmann::ordered_json merged = kwargs_object(kwargs_);
    const nlohmann::ordered_json more = kwargs_object(kwargs_json);  // alive for the loop (items() refers to it)
    for (const auto& [key, value] : more.items()) merged[key] = value;
    kwargs = merged.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  return apply_chat_template(tmpl_, {messages.begin(), messages.end()}, add_generation_prompt, bos_, eos_, tools_json,
                             kwargs);
}

std::vector<int32_t> ChatFormatter::encode(const std::string& text, bool conversation_start) const {
  if (!conversation_start) return tok_.encode_continuation(text, true);
  const bool has_bos = !bos_.empty() && text.rfind(bos_, 0) == 0;
  return tok_.encode(text, !has_bos, true);
}

ChatHistory::ChatHistory(const ChatFormatter& fmt, const std::string& system_prompt) : fmt_(fmt) {
  if (!system_prompt.empty()) messages_.push_back({"system", system_prompt});
}

std::string ChatHistory::add_user(const std::string& text) {
  messages_.push_back({"user", text});
  const std::string rendered = fmt_.render(messages_, true);
  // A reply the template writes otherwise than it was generated (trimmed, without its
  // reasoning), or an earlier turn written anew: the cache no longer holds the start of
  // the conversation, which then runs whole.
  rewrote_ = rendered.compare(0, fed_.size(), fed_) != 0;
  std::string next = rewrote_ ? rendered : rendered.substr(fed_.size());
  fed_ = rendered;
  return next;
}

void ChatHistory::add_assistant(const std::string& reply) { add_assistant(reply, reply, {}); }

void ChatHistory::add_assistant(const std::string& reply, const std::string& answer, const std::string& reasoning) {
  ChatMessage m{"assistant", answer};
  m.reasoning_content = reasoning;
  messages_.push_back(std::move(m));
  fed_ += reply;
}

}  // namespace qrun
