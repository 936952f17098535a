#include "qrun/grammar_constraint.h"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

#include "qrun/error.h"
#include "src/runtime/gbnf_grammar.h"
#include "src/runtime/grammar.h"
#include "src/runtime/json_lexers.h"
#include "src/runtime/json_prefix.h"
#include "src/runtime/json_schema_grammar.h"
#include "src/runtime/token_trie.h"

namespace qrun {

class GrammarConstraint::Text {
 public:
  virtual ~Text() = default;
  virtual bool accepts(std::string_view bytes) const = 0;
  virtual bool feed(std::string_view bytes) = 0;  // all or nothing
  virtual bool complete() const = 0;
  virtual bool accepted() const = 0;  // whole, though more may follow
  virtual uint32_t plain_string_room() const = 0;
  virtual void reset() = 0;
  // Sets allowed[id] for every token of the trie whose bytes continue the text.
  virtual void allowed_tokens(const TokenTrie& trie, std::vector<uint8_t>& allowed) const = 0;
};

namespace {

// JsonPrefix (any object) or GrammarPrefix (a schema's or GBNF grammar) behind
// GrammarConstraint::Text.
template <class Prefix>
class TextOf final : public GrammarConstraint::Text {
 public:
  explicit TextOf(Prefix initial) : initial_(initial), now_(std::move(initial)) {}
  bool accepts(std::string_view bytes) const override {
    Prefix trial = now_;
    return trial.feed(bytes);
  }
  bool feed(std::string_view bytes) override { return now_.feed(bytes); }
  bool complete() const override { return now_.complete(); }
  bool accepted() const override { return now_.accepted(); }
  uint32_t plain_string_room() const override { return now_.plain_string_room(); }
  void reset() override { now_ = initial_; }
  void allowed_tokens(const TokenTrie& trie, std::vector<uint8_t>& allowed) const override {
    // Bytes that bring the text back to the state it is in (a repeated class such as
    // [a-z]+) need no trial: below them the walk goes on from the same state, so a run of
    // them costs a table lookup per trie node instead of a copy and a feed.
    Walk w{trie, allowed, {now_}, {}};
    for (int b = 0; b < 256; ++b) {
      Prefix t = now_;
      w.loops[static_cast<size_t>(b)] = !t.feed(static_cast<uint8_t>(b)) ? Loop::Refused
                                        : t.same_state(now_)              ? Loop::Back
                                                                          : Loop::Elsewhere;
    }
    walk(w, trie.root(), 0, true);
  }

 private:
  enum class Loop : uint8_t { Refused, Back, Elsewhere };
  struct Walk {
    const TokenTrie& trie;
    std::vector<uint8_t>& allowed;
    std::vector<Prefix> after;  // after[d]: the text and the first d bytes of the path
    std::array<Loop, 256> loops;
  };

  // at_start: the bytes so far lead back to the text's own state (after[0]).
  static void walk(Walk& w, const TokenTrie::Node& node, size_t depth, bool at_start) {
    if (w.after.size() == depth + 1) w.after.push_back(w.after[0]);
    for (const TokenTrie::Node& child : w.trie.children(node)) {
      bool back = false;
      if (at_start) {
        const Loop l = w.loops[child.byte];
        if (l == Loop::Refused) continue;
        back = l == Loop::Back;
      }
      if (!back) {
        w.after[depth + 1] = w.after[at_start ? 0 : depth];
        if (!w.after[depth + 1].feed(child.byte)) continue;  // and every token below it
      }
      for (const int32_t id : w.trie.tokens(child)) w.allowed[static_cast<size_t>(id)] = 1;
      if (child.children) walk(w, child, depth + 1, back);
    }
  }

  Prefix initial_, now_;
};

}  // namespace

GrammarConstraint::GrammarConstraint(const Tokenizer& tok, std::span<const int32_t> kept) : text_(std::make_unique<TextOf<JsonPrefix>>(JsonPrefix())) {
  bytes_.resize(static_cast<size_t>(tok.vocab_size()));
  plain_chars_.resize(bytes_.size());
  ends_.assign(bytes_.size(), false);
  for (const int32_t id : tok.eos_ids())
    if (id >= 0 && static_cast<size_t>(id) < ends_.size()) ends_[static_cast<size_t>(id)] = true;
  for (size_t id = 0; id < bytes_.size(); ++id) {
    bytes_[id] = tok.token_text(static_cast<int32_t>(id), kept);
    // Never leaving the string: a token such as `","` that closes it and opens the next
    // would be taken or refused by what the string belongs to (a key or a value).
    JsonStringLexer string;
    bool plain = !bytes_[id].empty();
    for (size_t i = 0; plain && i < bytes_[id].size(); ++i)
      plain = string.step(static_cast<uint8_t>(bytes_[id][i])) == JsonStringLexer::Step::Inside;
    plain_chars_[id] = plain && string.between_chars() ? string.chars() : 0;
  }
  trie_ = std::make_unique<TokenTrie>(bytes_);
}

GrammarConstraint::~GrammarConstraint() = default;

void GrammarConstraint::set_schema(std::string_view schema) {
  text_ = std::make_unique<TextOf<GrammarPrefix>>(GrammarPrefix(json_schema_grammar(schema)));
}

void GrammarConstraint::set_gbnf(std::string_view grammar) {
  text_ = std::make_unique<TextOf<GrammarPrefix>>(GrammarPrefix(gbnf_grammar(grammar)));
}

void GrammarConstraint::check_gbnf(std::string_view grammar) { GrammarPrefix(gbnf_grammar(grammar)); }

void GrammarConstraint::set_tagged_json(std::string_view spec) {
  text_ = std::make_unique<TextOf<GrammarPrefix>>(GrammarPrefix(tagged_json_grammar(spec)));
}

void GrammarConstraint::check_tagged_json(std::string_view spec) { GrammarPrefix(tagged_json_grammar(spec)); }

void GrammarConstraint::set_object() { text_ = std::make_unique<TextOf<JsonPrefix>>(JsonPrefix()); }

// Building the recognizer too: a grammar whose start alone is too ambiguous is refused here.
void GrammarConstraint::check_schema(std::string_view schema) { GrammarPrefix(json_schema_grammar(schema)); }

void GrammarConstraint::reset() { text_->reset(); }

bool GrammarConstraint::complete() const { return text_->complete(); }

bool GrammarConstraint::allows(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= bytes_.size()) return false;
  if (ends_[static_cast<size_t>(token)]) return text_->accepted();
  const std::string& b = bytes_[static_cast<size_t>(token)];
  if (b.empty()) return false;
  const uint32_t chars = plain_chars_[static_cast<size_t>(token)];
  if (chars > 0 && chars <= text_->plain_string_room()) return true;
  return text_->accepts(b);
}

void GrammarConstraint::accept(int32_t token) {
  // feed() takes all of the bytes or none, so no trial copy first.
  const bool known = token >= 0 && static_cast<size_t>(token) < bytes_.size();
  if (known && ends_[static_cast<size_t>(token)] && text_->accepted()) return;  // nothing to feed
  if (!known || bytes_[static_cast<size_t>(token)].empty() || !text_->feed(bytes_[static_cast<size_t>(token)]))
    throw Error("constraint: token " + std::to_string(token) + " cannot continue the reply");
}

int GrammarConstraint::mask(std::span<float> logits) const {
  // Inside a string nearly every token is allowed and plain ones need no trial: try the
  // others one by one. Elsewhere few are: walk the trie, where a refused byte prunes.
  std::vector<uint8_t> allowed(bytes_.size(), 0);
  if (text_->plain_string_room() > 0) {
    for (size_t id = 0; id < bytes_.size(); ++id) allowed[id] = allows(static_cast<int32_t>(id));
  } else {
    text_->allowed_tokens(*trie_, allowed);
  }
  if (text_->accepted())
    for (size_t id = 0; id < ends_.size(); ++id) allowed[id] = allowed[id] || ends_[id];
  int count = 0;
  for (size_t id = 0; id < logits.size(); ++id) {
    if (id < allowed.size() && allowed[id]) ++count;
    else logits[id] = -std::numeric_limits<float>::infinity();
  }
  return count;
}

}  // namespace qrun
