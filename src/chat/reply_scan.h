// A model's reply as its readers see it: its reasoning and its answer, the whitespace they
// trim around them (JSON's), a tag that may be cut at the end of the text so far, and the
// tags that are special tokens (text a reply leaves out unless told to keep it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qrun/tokenizer.h"

namespace qrun {

struct ReplyParts {
  std::string reasoning, content;
  void append(const ReplyParts& more) {  // a stream's next pieces
    reasoning += more.reasoning;
    content += more.content;
  }
};

inline constexpr std::string_view kSpace = " \t\r\n";

inline std::string_view without_leading_space(std::string_view s) {
  const size_t a = s.find_first_not_of(kSpace);
  return a == std::string_view::npos ? std::string_view() : s.substr(a);
}

inline std::string_view without_trailing_space(std::string_view s) {
  const size_t b = s.find_last_not_of(kSpace);
  return b == std::string_view::npos ? std::string_view() : s.substr(0, b + 1);
}

inline std::string_view trimmed(std::string_view s) { return without_trailing_space(without_leading_space(s)); }

// The length of the longest end of `s` that is a proper start of `tag`.
inline size_t partial_tag_at_end(std::string_view s, std::string_view tag) {
  for (size_t k = std::min(s.size(), tag.size() - 1); k > 0; --k)
    if (s.substr(s.size() - k) == tag.substr(0, k)) return k;
  return 0;
}

// The ids of those of `texts` that are one special token of `tok` (StreamingDecoder's and
// ReplyText's `kept`).
inline std::vector<int32_t> special_token_ids(const Tokenizer& tok, const std::vector<std::string_view>& texts) {
  std::vector<int32_t> ids;
  for (const std::string_view text : texts)
    if (const std::vector<int32_t> one = tok.encode(text, false, true); one.size() == 1 && tok.token_text(one[0]).empty())
      ids.push_back(one[0]);
  return ids;
}

}  // namespace qrun
