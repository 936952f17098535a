// A context-free grammar over bytes and a recognizer that takes a text byte by byte while
// it can still be completed to a sentence of the grammar: the set of pushdown stacks the
// text so far can be in, as llama.cpp's grammar sampling keeps them. Besides single bytes,
// three terminals read JSON's strings, numbers and whitespace with the lexers of
// json_lexers.h, so that a JSON schema's grammar (json_schema_grammar.h) needs no rules for
// UTF-8 or escapes and takes exactly the strings and numbers that JSON mode takes.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "src/runtime/json_lexers.h"

namespace qrun {

struct GrammarElement {
  enum class Kind : uint8_t {
    Byte,     // one byte from min to max
    Rule,     // arg: the rule
    String,   // a JSON string, quotes included; min and max: its characters
    Number,   // a JSON number; bounded (lower or upper finite), without exponent and within them
    Integer,  // a JSON number without fraction or exponent, from low to high
    Space,    // a run of whitespace, possibly empty
  };
  Kind kind = Kind::Byte;
  uint32_t arg = 0;
  uint32_t min = 0, max = JsonStringLexer::kUnbounded;
  int64_t low = std::numeric_limits<int64_t>::min(), high = std::numeric_limits<int64_t>::max();
  // A number's bounds as decimals (see JsonNumberLexer::decimal_may_reach).
  long double lower = -std::numeric_limits<long double>::infinity(), upper = std::numeric_limits<long double>::infinity();

  static GrammarElement byte(uint8_t c) { return {Kind::Byte, 0, c, c}; }
  static GrammarElement bytes(uint8_t first, uint8_t last) { return {Kind::Byte, 0, first, last}; }
  static GrammarElement rule(uint32_t id) { return {Kind::Rule, id}; }
  static GrammarElement of(Kind kind) { return {kind}; }
  static GrammarElement string(uint32_t min, uint32_t max) { return {Kind::String, 0, min, max}; }
  static GrammarElement number(long double lower, long double upper) {
    GrammarElement e{Kind::Number};
    e.lower = lower, e.upper = upper;
    return e;
  }
  bool bounded() const { return std::isfinite(lower) || std::isfinite(upper); }
  static GrammarElement integer(int64_t low, int64_t high) {
    GrammarElement e{Kind::Integer};
    e.low = low, e.high = high;
    return e;
  }
  bool operator==(const GrammarElement&) const = default;
  auto key() const { return std::tie(kind, arg, min, max, low, high, lower, upper); }  // an order for grouping
};

class Grammar {
 public:
  using Sequence = std::vector<GrammarElement>;
  // Deep enough for JSON nested as far as JsonPrefix allows (64 containers, a few frames each).
  static constexpr size_t kMaxFrames = 512;
  static constexpr size_t kMaxRules = 1 << 18;

  uint32_t add_rule(std::string name = {});  // with no alternatives yet, so that rules can refer to each other
  void add_alternative(uint32_t rule, Sequence sequence);
  void set_root(uint32_t rule) { root_ = rule; }
  // Alternatives that begin with the same element share it (recursively): a rule of 1,100
  // words, or a class of 1,100 characters, becomes a trie, and the recognizer holds one
  // stack per place in it rather than one per alternative. The same sentences.
  void factor();
  // Throws qrun::Error (`what` names the grammar's source, and the message the rule) for a
  // rule that can reach itself without reading a byte (the recognizer would expand it
  // forever), and for a grammar with no sentence at all.
  void check(const std::string& what) const;

  uint32_t root() const { return root_; }
  size_t rules() const { return rules_.size(); }
  const std::vector<uint32_t>& alternatives(uint32_t rule) const { return rules_[rule]; }
  const Sequence& sequence(uint32_t id) const { return sequences_[id]; }

 private:
  std::string describe(uint32_t rule) const;
  // The rules with an alternative whose every element holds(element, rules so far), grown
  // to a fixpoint: nullable rules, rules that take some text.
  template <class Holds>
  std::vector<bool> closure(Holds holds) const;

  std::vector<std::vector<uint32_t>> rules_;  // each rule's alternatives: ids into sequences_
  std::vector<std::string> names_;            // for messages; empty for rules made on the way
  std::vector<Sequence> sequences_;
  uint32_t root_ = 0;
};

class GrammarPrefix {
 public:
  // More stacks than this means an ambiguous grammar meets an ambiguous text; the byte
  // that would need them is refused rather than the recognizer slowing to a crawl.
  static constexpr size_t kMaxStacks = 1024;
  // Steps of expansion one byte may take; copying a stack costs a step per kFramesPerStep
  // frames, so that deeply nested grammars are bounded in time too.
  static constexpr size_t kMaxWork = 16 * kMaxStacks;
  static constexpr size_t kFramesPerStep = 32;

  // Throws qrun::Error when the grammar's start alone needs more than kMaxStacks stacks.
  explicit GrammarPrefix(std::shared_ptr<const Grammar> grammar);

  bool feed(uint8_t c);               // false (and the state unchanged) when c cannot continue
  bool feed(std::string_view bytes);  // all or nothing
  // The text is a sentence and nothing but whitespace can follow it.
  bool complete() const;
  bool accepted() const;  // the text is a sentence (more may follow)
  // The same set of stacks: whatever follows, both take or refuse it alike.
  bool same_state(const GrammarPrefix& o) const;
  // The most characters a stack between two characters of a string can still take (its
  // maxLength less what it holds; kUnbounded without maxLength; 0 outside strings): a
  // token that stays inside a string (GrammarConstraint's plain tokens) with no more
  // characters than this continues the text.
  uint32_t plain_string_room() const;
  void reset();

 private:
  struct Frame {
    uint32_t sequence;
    uint32_t position;  // the next element of the sequence
    bool operator==(const Frame&) const = default;
  };
  // The top frame's element is a terminal (or the stack is empty: the text is a sentence);
  // the lexers hold how far that terminal has been read.
  struct Stack {
    std::vector<Frame> frames;
    bool started = false;  // the terminal has read its first byte
    JsonStringLexer string;
    JsonNumberLexer number;
    JsonSpaceLexer space;
    bool operator==(const Stack&) const = default;
  };
  struct StackHash {
    size_t operator()(const Stack& s) const;  // of the frames: the lexers rarely differ
  };
  // What one byte (or the start) expands to: distinct stacks, and the steps it took.
  // Readings that reach the same stack by different ways (empty alternatives, nullable
  // rules met twice) go on identically, so one copy is kept and the limit counts what
  // differs.
  struct Expansion {
    std::vector<Stack> stacks;
    std::vector<size_t> hashes;  // of stacks, to find a copy without comparing deep stacks
    size_t work = 0;
    void add(Stack s);
  };

  const GrammarElement* top(const Stack& s) const;
  static void to_next(Stack& s);  // past the top terminal, to the next element
  // Both return false past kMaxStacks stacks or kMaxWork steps.
  bool expand(Stack first, Expansion& out) const;  // down to terminals
  bool step(const Stack& s, uint8_t c, Expansion& out) const;

  std::shared_ptr<const Grammar> grammar_;
  std::vector<Stack> stacks_;
};

}  // namespace qrun
