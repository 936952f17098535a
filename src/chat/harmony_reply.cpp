#include "src/chat/harmony_reply.h"

#include <algorithm>
#include <optional>

#include <nlohmann/json.hpp>

#include "src/format/json_depth.h"

namespace qrun {

namespace {

constexpr std::string_view kStart = "<|start|>", kChannel = "<|channel|>", kMessage = "<|message|>";
constexpr std::string_view kEnds[] = {"<|end|>", "<|call|>", "<|return|>"};
constexpr std::string_view kFunctions = "functions.";

constexpr size_t kMaxArgumentsDepth = 64;  // as the server's other call forms allow

// A call's arguments as compact JSON: an object, at most kMaxArgumentsDepth deep.
std::optional<std::string> object_arguments(std::string_view text) {
  const auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || json_depth(j, kMaxArgumentsDepth) > kMaxArgumentsDepth) return std::nullopt;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// The word after `key` in a header: up to a space, a control token or the end.
std::string_view word_after(std::string_view header, std::string_view key) {
  const size_t at = header.find(key);
  if (at == std::string_view::npos) return {};
  const std::string_view rest = header.substr(at + key.size());
  return rest.substr(0, std::min(rest.find(' '), rest.find("<|")));
}

}  // namespace

bool writes_harmony(std::string_view chat_template) {
  return chat_template.find(kChannel) != std::string_view::npos && chat_template.find(kMessage) != std::string_view::npos;
}

std::vector<std::string_view> harmony_tokens() {
  return {kStart, kChannel, kMessage, kEnds[0], "<|constrain|>"};
}

HarmonyStream::HarmonyStream(HarmonyReading how, std::string_view start) : how_(how), held_(start) {}

void HarmonyStream::open_body(std::string_view header, ReplyParts& out) {
  header_ = std::string(header) + std::string(kMessage);
  const std::string_view recipient = word_after(header, "to="), channel = word_after(header, kChannel);
  if (!recipient.empty()) {
    const bool call = how_.read_calls && recipient.starts_with(kFunctions) && recipient.size() > kFunctions.size();
    goes_ = call ? Goes::Call : Goes::AsWritten;
    if (call) call_name_ = recipient.substr(kFunctions.size());
  } else {
    goes_ = !how_.separate_reasoning ? Goes::AsWritten : channel == "analysis" ? Goes::Reasoning : Goes::Content;
  }
  if (goes_ == Goes::AsWritten) out.content += header_;
  separate_next_ = goes_ == Goes::Reasoning ? reasoning_sent_ : content_sent_;
  body_begun_ = false;
}

void HarmonyStream::emit(std::string_view text, ReplyParts& out) {
  if (goes_ == Goes::Call) {
    body_ += text;
    return;
  }
  if (goes_ == Goes::AsWritten) {
    out.content += text;
    return;
  }
  if (!body_begun_) {
    text = without_leading_space(text);
    if (text.empty()) return;
    body_begun_ = true;
  }
  std::string& to = goes_ == Goes::Reasoning ? out.reasoning : out.content;
  if (separate_next_) to += "\n\n";
  separate_next_ = false;
  to += text;
  (goes_ == Goes::Reasoning ? reasoning_sent_ : content_sent_) = true;
}

void HarmonyStream::close_body(std::string_view end_marker, ReplyParts& out) {
  if (goes_ == Goes::AsWritten) out.content += end_marker;
  if (goes_ == Goes::Call) {
    if (std::optional<std::string> args = object_arguments(body_)) calls_.push_back({"", call_name_, std::move(*args)});
    else out.content += header_ + body_ + std::string(end_marker);
  }
  body_.clear();
}

ReplyParts HarmonyStream::feed(std::string_view text) {
  held_ += text;
  ReplyParts out;
  while (true) {
    if (state_ == State::Start) {
      const std::string_view s = without_leading_space(held_);
      bool may_open = false;
      for (const std::string_view opener : {kChannel, kStart}) {
        if (s.starts_with(opener)) state_ = State::Header;
        may_open = may_open || opener.starts_with(s);
      }
      if (state_ == State::Start) {
        if (may_open) return out;  // (or nothing but whitespace yet)
        state_ = State::Plain;
      }
    } else if (state_ == State::Plain) {
      out.content += held_;
      held_.clear();
      return out;
    } else if (state_ == State::Header) {
      const size_t message = held_.find(kMessage);
      if (message == std::string::npos) return out;
      open_body(std::string_view(held_).substr(0, message), out);
      held_.erase(0, message + kMessage.size());
      state_ = State::Body;
    } else {
      size_t end = std::string::npos;
      std::string_view marker;
      for (const std::string_view m : kEnds)
        if (const size_t at = held_.find(m); at < end) end = at, marker = m;
      if (end != std::string::npos) {
        emit(std::string_view(held_).substr(0, end), out);
        close_body(marker, out);
        held_.erase(0, end + marker.size());
        state_ = State::Header;
        continue;
      }
      size_t partial = 0;
      for (const std::string_view m : kEnds) partial = std::max(partial, partial_tag_at_end(held_, m));
      emit(std::string_view(held_).substr(0, held_.size() - partial), out);
      held_.erase(0, held_.size() - partial);
      return out;
    }
  }
}

HarmonyReply HarmonyStream::finish() {
  ReplyParts out;
  if (state_ == State::Body) {
    emit(held_, out);
    close_body({}, out);
  } else if (state_ != State::Header || !how_.separate_reasoning) {
    out.content += held_;  // a reply that never began a message; a header cut short, as written
  }
  held_.clear();
  return {std::move(out.reasoning), std::move(out.content), std::move(calls_)};
}

HarmonyReply read_harmony_reply(std::string_view reply, HarmonyReading how) {
  HarmonyStream stream(how);
  ReplyParts sent = stream.feed(reply);
  HarmonyReply rest = stream.finish();
  sent.append({rest.reasoning, rest.content});
  return {std::move(sent.reasoning), std::move(sent.content), std::move(rest.calls)};
}

}  // namespace qrun
