#include "src/runtime/grammar.h"

#include <algorithm>
#include <utility>

#include "qrun/error.h"

namespace qrun {

uint32_t Grammar::add_rule() {
  if (rules_.size() >= kMaxRules) throw Error("grammar: more than " + std::to_string(kMaxRules) + " rules");
  rules_.emplace_back();
  return static_cast<uint32_t>(rules_.size() - 1);
}

void Grammar::add_alternative(uint32_t rule, Sequence sequence) {
  for (const GrammarElement& e : sequence)
    if (e.kind == GrammarElement::Kind::Rule && e.arg >= rules_.size())
      throw Error("grammar: rule " + std::to_string(rule) + " refers to unknown rule " + std::to_string(e.arg));
  rules_.at(rule).push_back(static_cast<uint32_t>(sequences_.size()));
  sequences_.push_back(std::move(sequence));
}

void Grammar::check_left_recursion(const std::string& what) const {
  using Kind = GrammarElement::Kind;
  std::vector<bool> nullable(rules_.size(), false);
  const auto element_nullable = [&](const GrammarElement& e) {
    return e.kind == Kind::Space || (e.kind == Kind::Rule && nullable[e.arg]);
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (nullable[r]) continue;
      for (const uint32_t alt : rules_[r]) {
        bool all = true;
        for (const GrammarElement& e : sequences_[alt]) all = all && element_nullable(e);
        if (all) {
          nullable[r] = changed = true;
          break;
        }
      }
    }
  }
  // The rules each rule can start with: a cycle among them never reads a byte.
  std::vector<std::vector<uint32_t>> first(rules_.size());
  for (size_t r = 0; r < rules_.size(); ++r)
    for (const uint32_t alt : rules_[r])
      for (const GrammarElement& e : sequences_[alt]) {
        if (e.kind == Kind::Rule) first[r].push_back(e.arg);
        if (!element_nullable(e)) break;
      }
  enum : uint8_t { Unseen, Open, Done };
  std::vector<uint8_t> state(rules_.size(), Unseen);
  for (size_t start = 0; start < rules_.size(); ++start) {
    if (state[start] != Unseen) continue;
    std::vector<std::pair<uint32_t, size_t>> path{{static_cast<uint32_t>(start), 0}};
    state[start] = Open;
    while (!path.empty()) {
      auto& [rule, next] = path.back();
      if (next == first[rule].size()) {
        state[rule] = Done;
        path.pop_back();
        continue;
      }
      const uint32_t to = first[rule][next++];
      if (state[to] == Open) throw Error(what + ": refers to itself before any value is written (left recursion)");
      if (state[to] == Unseen) {
        state[to] = Open;
        path.emplace_back(to, 0);
      }
    }
  }
}

GrammarPrefix::GrammarPrefix(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) { reset(); }

void GrammarPrefix::reset() {
  stacks_.clear();
  for (const uint32_t alt : grammar_->alternatives(grammar_->root())) {
    Stack s;
    s.frames.push_back({alt, 0});
    expand(std::move(s), stacks_);
  }
}

const GrammarElement* GrammarPrefix::top(const Stack& s) const {
  if (s.frames.empty()) return nullptr;
  const Frame& f = s.frames.back();
  return &grammar_->sequence(f.sequence)[f.position];
}

void GrammarPrefix::advance(Stack s, std::vector<Stack>& out) const {
  ++s.frames.back().position;
  s.started = false;
  s.string = {};
  s.number = {};
  s.space = {};
  expand(std::move(s), out);
}

void GrammarPrefix::expand(Stack s, std::vector<Stack>& out) const {
  using Kind = GrammarElement::Kind;
  for (;;) {
    if (s.frames.empty()) {
      out.push_back(std::move(s));
      return;
    }
    Frame& f = s.frames.back();
    const Grammar::Sequence& seq = grammar_->sequence(f.sequence);
    if (f.position == seq.size()) {  // the rule is read: its caller already points past it
      s.frames.pop_back();
      continue;
    }
    const GrammarElement& e = seq[f.position];
    switch (e.kind) {
      case Kind::Rule: {
        // A rule that ends its sequence leaves nothing to come back to: its frame goes
        // before the callee's is pushed, so that a list of any length needs no deeper stack.
        if (++f.position == seq.size()) s.frames.pop_back();
        if (s.frames.size() >= Grammar::kMaxFrames) return;
        const auto& alts = grammar_->alternatives(e.arg);
        for (size_t i = 0; i < alts.size(); ++i) {
          Stack t = i + 1 < alts.size() ? s : std::move(s);
          t.frames.push_back({alts[i], 0});
          expand(std::move(t), out);
        }
        return;
      }
      case Kind::Space:  // possibly empty: also what follows it
        out.push_back(s);
        advance(std::move(s), out);
        return;
      case Kind::Number:
        out.push_back(s);
        if (s.started && s.number.can_end() && (!e.bounded() || s.number.decimal_within(e.lower, e.upper)))
          advance(std::move(s), out);
        return;
      case Kind::Integer:
        out.push_back(s);
        if (s.started && s.number.can_end() && s.number.integer_within(e.low, e.high)) advance(std::move(s), out);
        return;
      case Kind::Byte:
      case Kind::String:
        out.push_back(std::move(s));
        return;
    }
  }
}

void GrammarPrefix::step(const Stack& s, uint8_t c, std::vector<Stack>& out) const {
  using Kind = GrammarElement::Kind;
  const GrammarElement* e = top(s);
  if (!e) return;  // the text is a sentence: nothing more
  Stack t = s;
  switch (e->kind) {
    case Kind::Byte:
      if (c >= e->min && c <= e->max) advance(std::move(t), out);
      return;
    case Kind::String:
      if (!t.started) {
        if (c != '"') return;
        t.started = true;
        out.push_back(std::move(t));
        return;
      }
      switch (t.string.step(c, e->min, e->max)) {
        case JsonStringLexer::Step::Refused:
          return;
        case JsonStringLexer::Step::Inside:
          out.push_back(std::move(t));
          return;
        case JsonStringLexer::Step::Closed:
          advance(std::move(t), out);
          return;
      }
      return;
    case Kind::Number:
    case Kind::Integer:
    {
      using Shape = JsonNumberLexer::Shape;
      const Shape shape = e->kind == Kind::Integer ? Shape::Integer : e->bounded() ? Shape::Decimal : Shape::Any;
      if (!(t.started ? t.number.step(c, shape) : t.number.start(c))) return;
      if (shape == Shape::Integer && !t.number.integer_may_reach(e->low, e->high)) return;
      if (shape == Shape::Decimal && !t.number.decimal_may_reach(e->lower, e->upper)) return;
    }
      t.started = true;
      expand(std::move(t), out);
      return;
    case Kind::Space:
      if (JsonSpaceLexer::is_space(c) && t.space.step(c)) expand(std::move(t), out);
      return;
    case Kind::Rule:
      return;  // never on top: expand() replaces it
  }
}

bool GrammarPrefix::feed(uint8_t c) {
  std::vector<Stack> next;
  for (const Stack& s : stacks_) {
    step(s, c, next);
    if (next.size() > kMaxStacks) return false;
  }
  if (next.empty()) return false;
  size_t kept = 0;  // the distinct stacks, moved to the front
  for (size_t i = 0; i < next.size(); ++i) {
    bool seen = false;
    for (size_t k = 0; k < kept && !seen; ++k) seen = next[k] == next[i];
    if (seen) continue;
    if (kept != i) next[kept] = std::move(next[i]);
    ++kept;
  }
  next.resize(kept);
  stacks_ = std::move(next);
  return true;
}

bool GrammarPrefix::feed(std::string_view bytes) {
  GrammarPrefix next = *this;
  for (const char c : bytes)
    if (!next.feed(static_cast<uint8_t>(c))) return false;
  *this = std::move(next);
  return true;
}

bool GrammarPrefix::complete() const {
  bool sentence = false;
  for (const Stack& s : stacks_) {
    const GrammarElement* e = top(s);
    if (!e) sentence = true;
    else if (e->kind != GrammarElement::Kind::Space) return false;
  }
  return sentence;
}

bool GrammarPrefix::accepted() const {
  for (const Stack& s : stacks_)
    if (s.frames.empty()) return true;
  return false;
}

uint32_t GrammarPrefix::plain_string_room() const {
  uint32_t room = 0;
  for (const Stack& s : stacks_) {
    const GrammarElement* e = top(s);
    if (e && e->kind == GrammarElement::Kind::String && s.started && s.string.between_chars())
      room = std::max(room, e->max == JsonStringLexer::kUnbounded ? e->max : e->max - s.string.chars());
  }
  return room;
}

}  // namespace qrun
