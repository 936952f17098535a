#include "src/runtime/grammar.h"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <utility>

#include "qrun/error.h"

namespace qrun {

uint32_t Grammar::add_rule(std::string name) {
  if (rules_.size() >= kMaxRules)
    throw Error("grammar: more than " + std::to_string(kMaxRules) + " rules (repetitions and classes unrolled)");
  rules_.emplace_back();
  names_.push_back(std::move(name));
  return static_cast<uint32_t>(rules_.size() - 1);
}

std::string Grammar::describe(uint32_t rule) const {
  return names_[rule].empty() ? "a group of rule " + std::to_string(rule) : "rule \"" + names_[rule] + "\"";
}

void Grammar::factor() {
  for (size_t r = 0; r < rules_.size(); ++r) {  // the rules it adds are factored in turn
    std::vector<uint32_t> alts = rules_[r];
    const auto first = [&](uint32_t alt) { return sequences_[alt].front().key(); };
    std::stable_sort(alts.begin(), alts.end(), [&](uint32_t a, uint32_t b) {
      if (sequences_[a].empty() || sequences_[b].empty()) return sequences_[a].empty() && !sequences_[b].empty();
      return first(a) < first(b);
    });
    std::vector<uint32_t> merged;
    bool grouped = false;
    for (size_t i = 0; i < alts.size();) {
      size_t j = i + 1;
      if (!sequences_[alts[i]].empty())
        while (j < alts.size() && !sequences_[alts[j]].empty() &&
               sequences_[alts[j]].front() == sequences_[alts[i]].front())
          ++j;
      if (j - i == 1) {
        merged.push_back(alts[i++]);
        continue;
      }
      const uint32_t rest = add_rule();
      for (size_t k = i; k < j; ++k) {
        const Sequence& s = sequences_[alts[k]];
        add_alternative(rest, Sequence(s.begin() + 1, s.end()));
      }
      merged.push_back(static_cast<uint32_t>(sequences_.size()));
      sequences_.push_back({sequences_[alts[i]].front(), GrammarElement::rule(rest)});
      grouped = true;
      i = j;
    }
    if (grouped) rules_[r] = std::move(merged);  // else keep the order the grammar gave
  }
}

void Grammar::add_alternative(uint32_t rule, Sequence sequence) {
  for (const GrammarElement& e : sequence)
    if (e.kind == GrammarElement::Kind::Rule && e.arg >= rules_.size())
      throw Error("grammar: rule " + std::to_string(rule) + " refers to unknown rule " + std::to_string(e.arg));
  rules_.at(rule).push_back(static_cast<uint32_t>(sequences_.size()));
  sequences_.push_back(std::move(sequence));
}

template <class Holds>
std::vector<bool> Grammar::closure(Holds holds) const {
  std::vector<bool> in(rules_.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (in[r]) continue;
      for (const uint32_t alt : rules_[r]) {
        bool all = true;
        for (const GrammarElement& e : sequences_[alt]) all = all && holds(e, in);
        if (all) {
          in[r] = changed = true;
          break;
        }
      }
    }
  }
  return in;
}

void Grammar::check(const std::string& what) const {
  using Kind = GrammarElement::Kind;
  const auto reads_nothing = [](const GrammarElement& e, const std::vector<bool>& nullable_rules) {
    return e.kind == Kind::Space || (e.kind == Kind::Rule && nullable_rules[e.arg]);
  };
  const std::vector<bool> nullable = closure(reads_nothing);
  const auto element_nullable = [&](const GrammarElement& e) { return reads_nothing(e, nullable); };
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
      if (state[to] == Open) {
        // The cycle runs from `to` to the end of the path: name its first rule with a name.
        size_t at = 0;
        while (path[at].first != to) ++at;
        uint32_t named = to;
        for (size_t i = path.size(); i-- > at;)
          if (!names_[path[i].first].empty()) named = path[i].first;
        throw Error(what + ": " + describe(named) + " refers to itself before reading a byte (left recursion)");
      }
      if (state[to] == Unseen) {
        state[to] = Open;
        path.emplace_back(to, 0);
      }
    }
  }
  const std::vector<bool> productive = closure([](const GrammarElement& e, const std::vector<bool>& rules) {  // takes some text
    return e.kind == Kind::Rule ? bool(rules[e.arg]) : e.kind != Kind::Byte || e.min <= e.max;
  });
  if (!productive[root_]) throw Error(what + ": has no sentence (" + describe(root_) + " can take no text)");
}

GrammarPrefix::GrammarPrefix(std::shared_ptr<const Grammar> grammar) : grammar_(std::move(grammar)) { reset(); }

void GrammarPrefix::reset() {
  Expansion start_of;
  Stack start;
  start.frames.push_back({0, 0});  // stands for a caller of the root: expand() replaces it
  bool fits = true;
  for (const uint32_t alt : grammar_->alternatives(grammar_->root())) {
    start.frames.back() = {alt, 0};
    fits = fits && expand(start, start_of);
  }
  if (!fits || start_of.stacks.size() > kMaxStacks)
    throw Error("grammar: its start has more than " + std::to_string(kMaxStacks) + " ways to go on (too ambiguous)");
  stacks_ = std::move(start_of.stacks);
}

size_t GrammarPrefix::StackHash::operator()(const Stack& s) const {
  size_t h = s.frames.size();
  for (const Frame& f : s.frames) h = (h * 0x9E3779B97F4A7C15ull) ^ (uint64_t{f.sequence} << 32 | f.position);
  return h;
}

void GrammarPrefix::Expansion::add(Stack s) {
  const size_t h = StackHash{}(s);
  for (size_t i = 0; i < stacks.size(); ++i)
    if (hashes[i] == h && stacks[i] == s) return;
  stacks.push_back(std::move(s));
  hashes.push_back(h);
}

const GrammarElement* GrammarPrefix::top(const Stack& s) const {
  if (s.frames.empty()) return nullptr;
  const Frame& f = s.frames.back();
  return &grammar_->sequence(f.sequence)[f.position];
}

void GrammarPrefix::to_next(Stack& s) {
  ++s.frames.back().position;
  s.started = false;
  s.string = {};
  s.number = {};
  s.space = {};
}

// Down to terminals, without recursion (a grammar may nest nullable rules deeply): a
// worklist of stacks still to expand. Returns false past kMaxStacks stacks or kMaxWork
// steps: the byte that led here is refused rather than the recognizer slowing to a crawl.
bool GrammarPrefix::expand(Stack first, Expansion& out) const {
  using Kind = GrammarElement::Kind;
  std::vector<Stack> todo;  // the other alternatives of rules met on the way
  // Where ways came back to a caller: a way that comes back to a stack another already
  // reached goes on as that one did (empty alternatives, nullable rules repeated), so it
  // stops. Kept only once the expansion is long: most are a few steps, and a set costs.
  std::unordered_set<Stack, StackHash> resumed;
  const size_t long_after = out.work + 64;
  Stack s = std::move(first);
  for (;;) {
    for (bool more = true; more;) {
      if (++out.work > kMaxWork || out.stacks.size() > kMaxStacks) return false;
      if (s.frames.empty()) {
        out.add(std::move(s));
        break;
      }
      Frame& f = s.frames.back();
      const Grammar::Sequence& seq = grammar_->sequence(f.sequence);
      if (f.position == seq.size()) {  // the rule is read: its caller already points past it
        s.frames.pop_back();
        if (out.work > long_after) {
          if (!resumed.insert(s).second) break;
          out.work += s.frames.size() / kFramesPerStep;
        }
        continue;
      }
      const GrammarElement& e = seq[f.position];
      more = false;
      switch (e.kind) {
        case Kind::Rule: {
          // A rule that ends its sequence leaves nothing to come back to: its frame goes
          // before the callee's is pushed, so that a list of any length needs no deeper stack.
          if (++f.position == seq.size()) s.frames.pop_back();
          const auto& alts = grammar_->alternatives(e.arg);
          if (s.frames.size() >= Grammar::kMaxFrames || alts.empty()) break;
          for (size_t i = 1; i < alts.size(); ++i) {
            todo.push_back(s);
            todo.back().frames.push_back({alts[i], 0});
            out.work += s.frames.size() / kFramesPerStep;
          }
          s.frames.push_back({alts[0], 0});  // the first goes on here
          more = true;
          break;
        }
        case Kind::Space:  // possibly empty: also what follows it
          out.add(s);
          to_next(s);
          more = true;
          break;
        case Kind::Number:
          out.add(s);
          more = s.started && s.number.can_end() && (!e.bounded() || s.number.decimal_within(e.lower, e.upper));
          if (more) to_next(s);
          break;
        case Kind::Integer:
          out.add(s);
          more = s.started && s.number.can_end() && s.number.integer_within(e.low, e.high);
          if (more) to_next(s);
          break;
        case Kind::Byte:
        case Kind::String:
          out.add(std::move(s));
          break;
      }
    }
    if (todo.empty()) return true;
    s = std::move(todo.back());
    todo.pop_back();
  }
}

bool GrammarPrefix::step(const Stack& s, uint8_t c, Expansion& out) const {
  using Kind = GrammarElement::Kind;
  const GrammarElement* e = top(s);
  if (!e) return true;  // the text is a sentence: nothing more
  Stack t = s;
  switch (e->kind) {
    case Kind::Byte:
      if (c < e->min || c > e->max) return true;
      to_next(t);
      return expand(std::move(t), out);
    case Kind::String:
      if (!t.started) {
        if (c != '"') return true;
        t.started = true;
        out.add(std::move(t));
        return true;
      }
      switch (t.string.step(c, e->min, e->max)) {
        case JsonStringLexer::Step::Refused:
          return true;
        case JsonStringLexer::Step::Inside:
          out.add(std::move(t));
          return true;
        case JsonStringLexer::Step::Closed:
          to_next(t);
          return expand(std::move(t), out);
      }
      return true;
    case Kind::Number:
    case Kind::Integer: {
      using Shape = JsonNumberLexer::Shape;
      const Shape shape = e->kind == Kind::Integer ? Shape::Integer : e->bounded() ? Shape::Decimal : Shape::Any;
      if (!(t.started ? t.number.step(c, shape) : t.number.start(c))) return true;
      if (shape == Shape::Integer && !t.number.integer_may_reach(e->low, e->high)) return true;
      if (shape == Shape::Decimal && !t.number.decimal_may_reach(e->lower, e->upper)) return true;
      t.started = true;
      return expand(std::move(t), out);
    }
    case Kind::Space:
      if (!JsonSpaceLexer::is_space(c) || !t.space.step(c)) return true;
      return expand(std::move(t), out);
    case Kind::Rule:
      return true;  // never on top: expand() replaces it
  }
  return true;
}

bool GrammarPrefix::feed(uint8_t c) {
  Expansion next;
  for (const Stack& s : stacks_)
    if (!step(s, c, next) || next.stacks.size() > kMaxStacks) return false;
  if (next.stacks.empty()) return false;
  stacks_ = std::move(next.stacks);
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

bool GrammarPrefix::same_state(const GrammarPrefix& o) const {
  if (grammar_ != o.grammar_ || stacks_.size() != o.stacks_.size()) return false;
  for (const Stack& s : stacks_) {  // both are free of duplicates
    bool found = false;
    for (const Stack& t : o.stacks_) found = found || s == t;
    if (!found) return false;
  }
  return true;
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
