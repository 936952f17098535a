#include "qrun/json_constraint.h"

#include <limits>

#include "qrun/error.h"
#include "src/runtime/json_prefix.h"

namespace qrun {

JsonConstraint::JsonConstraint(const Tokenizer& tok) : text_(std::make_unique<JsonPrefix>()) {
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

void JsonConstraint::reset() { *text_ = JsonPrefix(); }

bool JsonConstraint::complete() const { return text_->complete(); }

bool JsonConstraint::allows(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= bytes_.size()) return false;
  const std::string& b = bytes_[static_cast<size_t>(token)];
  if (b.empty()) return false;
  if (plain_[static_cast<size_t>(token)] && text_->in_plain_string()) return true;
  JsonPrefix trial = *text_;
  return trial.feed(b);
}

void JsonConstraint::accept(int32_t token) {
  // feed() takes all of the bytes or none, so no trial copy first.
  const bool known = token >= 0 && static_cast<size_t>(token) < bytes_.size();
  if (!known || bytes_[static_cast<size_t>(token)].empty() || !text_->feed(bytes_[static_cast<size_t>(token)]))
    throw Error("JSON constraint: token " + std::to_string(token) + " cannot continue the object");
}

int JsonConstraint::mask(std::span<float> logits) const {
  int allowed = 0;
  for (size_t id = 0; id < logits.size(); ++id) {
    if (allows(static_cast<int32_t>(id))) ++allowed;
    else logits[id] = -std::numeric_limits<float>::infinity();
  }
  return allowed;
}

}  // namespace qrun
