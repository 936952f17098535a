#include "qrun/json_constraint.h"

#include <array>
#include <limits>
#include <utility>

#include "qrun/error.h"
#include "src/runtime/grammar.h"
#include "src/runtime/json_prefix.h"
#include "src/runtime/json_schema_grammar.h"

namespace qrun {

class JsonConstraint::Text {
 public:
  virtual ~Text() = default;
  virtual bool accepts(std::string_view bytes) const = 0;
  virtual bool feed(std::string_view bytes) = 0;  // all or nothing
  virtual bool complete() const = 0;
  virtual bool in_plain_string() const = 0;
  virtual void reset() = 0;
};

namespace {

// JsonPrefix (any object) or GrammarPrefix (a schema) behind JsonConstraint::Text.
template <class Prefix>
class TextOf final : public JsonConstraint::Text {
 public:
  explicit TextOf(Prefix initial) : initial_(initial), now_(std::move(initial)) {}
  bool accepts(std::string_view bytes) const override {
    Prefix trial = now_;
    return trial.feed(bytes);
  }
  bool feed(std::string_view bytes) override { return now_.feed(bytes); }
  bool complete() const override { return now_.complete(); }
  bool in_plain_string() const override { return now_.in_plain_string(); }
  void reset() override { now_ = initial_; }

 private:
  Prefix initial_, now_;
};

}  // namespace

JsonConstraint::JsonConstraint(const Tokenizer& tok) : text_(std::make_unique<TextOf<JsonPrefix>>(JsonPrefix())) {
  bytes_.resize(static_cast<size_t>(tok.vocab_size()));
  plain_.resize(bytes_.size());
  JsonPrefix in_string;
  in_string.feed(std::string_view("{\""));
  for (size_t id = 0; id < bytes_.size(); ++id) {
    bytes_[id] = tok.token_text(static_cast<int32_t>(id), false);
    // Never leaving the string: a token such as `","` that closes it and opens the next
    // would be taken or refused by what the string belongs to (a key or a value).
    JsonPrefix p = in_string;
    bool plain = !bytes_[id].empty();
    for (size_t i = 0; plain && i < bytes_[id].size(); ++i)
      plain = p.feed(static_cast<uint8_t>(bytes_[id][i])) && p.in_string();
    plain_[id] = plain && p.in_plain_string();
  }
}

JsonConstraint::~JsonConstraint() = default;

void JsonConstraint::set_schema(std::string_view schema) {
  if (schema.empty()) text_ = std::make_unique<TextOf<JsonPrefix>>(JsonPrefix());
  else text_ = std::make_unique<TextOf<GrammarPrefix>>(GrammarPrefix(json_schema_grammar(schema)));
}

void JsonConstraint::check_schema(std::string_view schema) { json_schema_grammar(schema); }

void JsonConstraint::reset() { text_->reset(); }

bool JsonConstraint::complete() const { return text_->complete(); }

bool JsonConstraint::allows(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= bytes_.size()) return false;
  const std::string& b = bytes_[static_cast<size_t>(token)];
  if (b.empty()) return false;
  if (plain_[static_cast<size_t>(token)] && text_->in_plain_string()) return true;
  return text_->accepts(b);
}

void JsonConstraint::accept(int32_t token) {
  // feed() takes all of the bytes or none, so no trial copy first.
  const bool known = token >= 0 && static_cast<size_t>(token) < bytes_.size();
  if (!known || bytes_[static_cast<size_t>(token)].empty() || !text_->feed(bytes_[static_cast<size_t>(token)]))
    throw Error("JSON constraint: token " + std::to_string(token) + " cannot continue the reply");
}

int JsonConstraint::mask(std::span<float> logits) const {
  // Most places in JSON take few bytes: a token whose first byte is refused needs no trial.
  std::array<bool, 256> first{};
  for (int c = 0; c < 256; ++c) {
    const char byte = static_cast<char>(c);
    first[static_cast<size_t>(c)] = text_->accepts(std::string_view(&byte, 1));
  }
  int allowed = 0;
  for (size_t id = 0; id < logits.size(); ++id) {
    const bool ok = id < bytes_.size() && !bytes_[id].empty() &&
                    first[static_cast<uint8_t>(bytes_[id][0])] && allows(static_cast<int32_t>(id));
    if (ok) ++allowed;
    else logits[id] = -std::numeric_limits<float>::infinity();
  }
  return allowed;
}

}  // namespace qrun
