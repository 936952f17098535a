#include "src/server/infill.h"

#include <algorithm>

#include "src/server/body_fields.h"
#include "src/server/llama_completion_request.h"

namespace qrun::server {

namespace {

// Each role's texts in the vocabularies that have FIM tokens.
struct FimRole {
  int32_t FimTokens::*slot;
  std::vector<std::string_view> texts;
};
const std::vector<FimRole>& fim_roles() {
  static const std::vector<FimRole> roles = {
      {&FimTokens::prefix, {"<|fim_prefix|>", "<fim_prefix>", "<fim-prefix>", "\xE2\x96\x81<PRE>", "<PRE>",
                            "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>", "[PREFIX]"}},
      {&FimTokens::suffix, {"<|fim_suffix|>", "<fim_suffix>", "<fim-suffix>", "\xE2\x96\x81<SUF>", "<SUF>",
                            "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>", "[SUFFIX]"}},
      {&FimTokens::middle, {"<|fim_middle|>", "<fim_middle>", "<fim-middle>", "\xE2\x96\x81<MID>", "<MID>",
                            "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>", "[MIDDLE]"}},
      {&FimTokens::repo, {"<|repo_name|>", "<repo_name>", "<reponame>"}},
      {&FimTokens::file_sep, {"<|file_sep|>", "<file_sep>"}},
  };
  return roles;
}

std::string string_or_empty(const OrderedJson& body, const char* key) {
  const OrderedJson* v = find_field(body, key);
  if (!v) return {};
  if (!v->is_string()) bad_field(key, "must be a string");
  return v->get<std::string>();
}

}  // namespace

FimTokens find_fim_tokens(const Tokenizer& tok) {
  FimTokens fim;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string_view piece = tok.piece(id);
    if (piece.size() < 5 || piece.size() > 20) continue;
    for (const FimRole& role : fim_roles()) {
      const auto at = std::find(role.texts.begin(), role.texts.end(), piece);
      if (at == role.texts.end()) continue;
      // The earlier text of the list wins (a vocabulary with "▁<PRE>" and "<PRE>").
      int32_t& slot = fim.*role.slot;
      if (slot < 0 || at < std::find(role.texts.begin(), role.texts.end(), tok.piece(slot))) slot = id;
    }
  }
  return fim;
}

InfillRequest parse_infill_request(std::string_view text) {
  OrderedJson body = parse_body_object(text);
  InfillRequest r;
  r.prefix = string_or_empty(body, "input_prefix");
  r.suffix = string_or_empty(body, "input_suffix");
  r.typed = string_or_empty(body, "prompt");
  if (const OrderedJson* extra = find_field(body, "input_extra")) {
    if (!extra->is_array()) bad_field("input_extra", "must be a list of {\"filename\", \"text\"} objects");
    for (size_t i = 0; i < extra->size(); ++i) {
      const OrderedJson& chunk = (*extra)[i];
      const std::string field = "input_extra[" + std::to_string(i) + "]";
      if (!chunk.is_object()) bad_field(field, "must be an object with \"filename\" and \"text\"");
      r.extra.emplace_back(string_or_empty(chunk, "filename"), string_field(chunk, "text", field));
    }
  }
  for (const char* key : {"input_prefix", "input_suffix", "input_extra"}) body.erase(key);
  body["prompt"] = "";  // built from the inputs
  r.completion = parse_llama_completion_request(dump_body(body));
  return r;
}

std::vector<int32_t> infill_prompt(const Tokenizer& tok, const FimTokens& fim, const InfillRequest& r, int room) {
  auto text = [&](std::string_view s) { return tok.encode(s, false, false); };
  auto append = [](std::vector<int32_t>& to, const std::vector<int32_t>& from) { to.insert(to.end(), from.begin(), from.end()); };
  std::vector<int32_t> extra;
  if (fim.repo >= 0) {
    extra.push_back(fim.repo);
    append(extra, text("myproject\n"));
  }
  for (const auto& [filename, body] : r.extra) {
    if (fim.file_sep >= 0) {
      extra.push_back(fim.file_sep);
      append(extra, text(filename + "\n"));
    }
    append(extra, text(body));
  }
  if (fim.file_sep >= 0) {
    extra.push_back(fim.file_sep);
    append(extra, text("filename\n"));
  }
  std::vector<int32_t> prefix = text(r.prefix), suffix = text(r.suffix);
  append(prefix, text(r.typed));
  // What fits: BOS and the three FIM tokens, then the prefix's end and the suffix's start
  // (3:1), then the extra context's end in what is left.
  const std::vector<int32_t> start = tok.encode("", true, false);
  const bool bos = tok.bos_id() >= 0 && !start.empty() && start.front() == tok.bos_id();  // where prompts get one
  const int fixed = 3 + (bos ? 1 : 0);
  const int64_t code_room = std::max(0, room - fixed);
  int64_t take_prefix = std::min<int64_t>(int64_t(prefix.size()), code_room * 3 / 4);
  const int64_t take_suffix = std::min<int64_t>(int64_t(suffix.size()), code_room - take_prefix);
  take_prefix = std::min<int64_t>(int64_t(prefix.size()), code_room - take_suffix);
  const int64_t take_extra = std::min<int64_t>(int64_t(extra.size()), code_room - take_prefix - take_suffix);
  std::vector<int32_t> out;
  if (bos) out.push_back(tok.bos_id());
  out.insert(out.end(), extra.end() - take_extra, extra.end());
  out.push_back(fim.prefix);
  out.insert(out.end(), prefix.end() - take_prefix, prefix.end());
  out.push_back(fim.suffix);
  out.insert(out.end(), suffix.begin(), suffix.begin() + take_suffix);
  out.push_back(fim.middle);
  return out;
}

}  // namespace qrun::server
