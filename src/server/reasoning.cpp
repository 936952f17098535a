#include "src/server/reasoning.h"

#include "src/chat/reply_scan.h"

namespace qrun::server {

bool parse_reasoning_format(std::string_view name, bool* separate) {
  if (name != "deepseek" && name != "auto" && name != "none") return false;
  *separate = name != "none";
  return true;
}

ThinkTags think_tags(std::string_view chat_template) {
  return chat_template.find(kMistralThinkTags.open) != std::string_view::npos ? kMistralThinkTags : kThinkTags;
}

bool prompt_opens_thinking(std::string_view prompt, ThinkTags tags) {
  return without_trailing_space(prompt).ends_with(tags.open);
}

ReasoningSplit split_reasoning(std::string_view reply, bool inside, ThinkTags tags) {
  const std::string_view open_tag = tags.open, close_tag = tags.close;
  size_t begin = 0;
  const std::string_view start = without_leading_space(reply);
  if (start.starts_with(open_tag)) begin = reply.size() - start.size() + open_tag.size();  // (again, when inside)
  else if (!inside) return {{}, std::string(reply)};
  const size_t close = reply.find(close_tag, begin);
  const std::string_view reasoning = reply.substr(begin, close == std::string_view::npos ? close : close - begin);
  ReasoningSplit s{std::string(without_trailing_space(without_leading_space(reasoning))), {}};
  if (close != std::string_view::npos) s.content = without_leading_space(reply.substr(close + close_tag.size()));
  return s;
}

ReasoningSplit ReasoningStream::feed(std::string_view text) {
  const std::string_view open_tag = tags_.open, close_tag = tags_.close;
  held_ += text;
  ReasoningSplit out;
  while (true) {
    if (state_ == State::Start) {
      const std::string_view start = without_leading_space(held_);
      if (start.size() < open_tag.size() && open_tag.starts_with(start)) return out;  // may yet open a block
      if (start.starts_with(open_tag)) {
        held_.erase(0, held_.size() - start.size() + open_tag.size());
        state_ = State::Reasoning;
        opened_ = true;
      } else {
        state_ = State::Content;  // all of the reply, as it is
      }
    } else if (state_ == State::Reasoning) {
      if (!reasoning_begun_) {
        held_.erase(0, held_.size() - without_leading_space(held_).size());
        // A model may open the block the prompt opened: its tag is not reasoning.
        if (!opened_) {
          if (held_.size() < open_tag.size() && open_tag.starts_with(held_)) return out;
          if (held_.starts_with(open_tag)) {
            held_.erase(0, open_tag.size());
            opened_ = true;
            continue;
          }
          opened_ = true;
        }
      }
      const size_t close = held_.find(close_tag);
      if (close != std::string::npos) {
        out.reasoning += without_trailing_space(std::string_view(held_).substr(0, close));
        held_.erase(0, close + close_tag.size());
        state_ = State::Content;
        after_reasoning_ = true;
        continue;
      }
      // Hold back what may be the start of </think> and the whitespace before it.
      const std::string_view sendable = std::string_view(held_).substr(0, held_.size() - partial_tag_at_end(held_, close_tag));
      const size_t n = without_trailing_space(sendable).size();
      out.reasoning += held_.substr(0, n);
      reasoning_begun_ = reasoning_begun_ || n > 0;
      held_.erase(0, n);
      return out;
    } else {
      if (after_reasoning_ && !content_begun_) held_.erase(0, held_.size() - without_leading_space(held_).size());
      content_begun_ = content_begun_ || !held_.empty();
      out.content += held_;
      held_.clear();
      return out;
    }
  }
}

ReasoningSplit ReasoningStream::finish() {
  ReasoningSplit out;
  if (state_ == State::Reasoning)
    out.reasoning = without_trailing_space(reasoning_begun_ ? std::string_view(held_) : without_leading_space(held_));
  else
    out.content = held_;  // Start: the reply never began a block; Content: nothing is held
  held_.clear();
  return out;
}

}  // namespace qrun::server
