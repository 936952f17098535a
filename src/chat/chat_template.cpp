// The Jinja subset behind apply_chat_template, in three stages: split the template into
// text and tags (src/jinja_lexer), parse the tags into statements and expressions
// (src/jinja_parser), then walk that tree with Python-like values (src/jinja_renderer,
// src/jinja_value). Semantics follow Jinja2 + transformers wherever a template can tell.
#include "qrun/chat_template.h"

#include "src/chat/jinja_renderer.h"

namespace qrun {

using namespace jinja;

namespace {

Body parse(const Source& src, const std::string& tmpl) {
  std::vector<Piece> pieces = split_template(src);
  apply_whitespace_rules(pieces, tmpl);
  return parse_template(src, pieces);
}

}  // namespace

void check_chat_template(const std::string& tmpl) { parse(Source(tmpl), tmpl); }

std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const std::string& bos_token,
                                const std::string& eos_token) {
  const Source src(tmpl);
  const Body body = parse(src, tmpl);

  List msgs;
  for (const ChatMessage& m : messages)
    msgs.push_back(Value::of(Dict{{"role", Value::str(m.role)}, {"content", Value::str(m.content)}}));
  Dict globals{{"messages", Value::of(std::move(msgs))},
               {"add_generation_prompt", Value::boolean(add_generation_prompt)},
               {"bos_token", Value::str(bos_token)},
               {"eos_token", Value::str(eos_token)},
               {"tools", Value::none()}};
  return render(src, body, std::move(globals));
}

}  // namespace qrun
