// GBNF grammars: the notation's pieces byte by byte, character classes against every
// code point they name, and errors that point at the line and column.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "qrun/error.h"
#include "src/runtime/gbnf_grammar.h"
#include "src/runtime/grammar.h"

namespace qrun {
namespace {

bool whole(const std::string& grammar, const std::string& text) {
  GrammarPrefix p(gbnf_grammar(grammar));
  return p.feed(std::string_view(text)) && p.complete();
}

bool prefix(const std::string& grammar, const std::string& text) {
  return GrammarPrefix(gbnf_grammar(grammar)).feed(std::string_view(text));
}

// Whether the text is a sentence (it may go on); complete() also asks that it cannot.
bool sentence(const std::string& grammar, const std::string& text) {
  GrammarPrefix p(gbnf_grammar(grammar));
  return p.feed(std::string_view(text)) && p.accepted();
}

std::string error_of(const std::string& grammar) {
  try {
    gbnf_grammar(grammar);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) return std::string(1, static_cast<char>(cp));
  if (cp < 0x800) return {static_cast<char>(0xC0 | cp >> 6), static_cast<char>(0x80 | (cp & 0x3F))};
  if (cp < 0x10000)
    return {static_cast<char>(0xE0 | cp >> 12), static_cast<char>(0x80 | (cp >> 6 & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
  return {static_cast<char>(0xF0 | cp >> 18), static_cast<char>(0x80 | (cp >> 12 & 0x3F)),
          static_cast<char>(0x80 | (cp >> 6 & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
}

TEST(GbnfGrammar, RulesAlternativesGroupsAndRepetitions) {
  const std::string g = R"(# a greeting and a list
root   ::= greet " " names "."
greet  ::= "Hello" | "Hi"   # either
names  ::= name ("," " "? name){0,2}
name   ::= [A-Z] [a-z]+
)";
  EXPECT_TRUE(whole(g, "Hello Tim."));
  EXPECT_TRUE(whole(g, "Hi Tim, Lily,Sam."));
  EXPECT_FALSE(prefix(g, "Hi Tim, Lily, Sam, Ann"));  // {0,2}
  EXPECT_FALSE(prefix(g, "Hey"));
  EXPECT_FALSE(prefix(g, "Hi tim"));
  EXPECT_FALSE(prefix(g, "Hi T."));                 // [a-z]+ needs one
  EXPECT_TRUE(prefix(g, "Hi Tim"));
  EXPECT_FALSE(whole(g, "Hi Tim"));
  EXPECT_TRUE(sentence(R"(root ::= "ab"{2} "c"? "d"* "e"+ "f"{1,})", "ababceef"));
  EXPECT_TRUE(sentence(R"(root ::= "ab"{2} "c"? "d"* "e"+ "f"{1,})", "ababdddeeff"));
  EXPECT_FALSE(sentence(R"(root ::= "ab"{2} "c"? "d"* "e"+ "f"{1,})", "ababcf"));
  EXPECT_FALSE(prefix(R"(root ::= "ab"{2} "c"? "d"* "e"+ "f"{1,})", "abc"));
  // Parentheses span lines; | may end a line.
  const std::string multi = "root ::= (\n  \"a\" |\n  \"b\"\n) \"!\" |\n  \"c\"\n";
  EXPECT_TRUE(whole(multi, "a!"));
  EXPECT_TRUE(whole(multi, "b!"));
  EXPECT_TRUE(whole(multi, "c"));
  EXPECT_FALSE(prefix(multi, "c!"));
}

TEST(GbnfGrammar, CompleteWhenNothingCanFollowAcceptedWhenTheTextIsASentence) {
  const std::string g = R"(root ::= [a-z]+ "!"?)";
  EXPECT_TRUE(sentence(g, "abc"));
  EXPECT_FALSE(whole(g, "abc"));  // more letters may follow
  EXPECT_TRUE(whole(g, "abc!"));
  EXPECT_FALSE(sentence(g, ""));
}

TEST(GbnfGrammar, LiteralsAndClassesAreUnicodeCharacters) {
  EXPECT_TRUE(whole(R"(root ::= [α-ω]+ ".")", "λαβ."));
  EXPECT_FALSE(prefix(R"(root ::= [α-ω]+)", "a"));
  EXPECT_TRUE(whole(R"(root ::= "\u00e9\x41\U0001F642\n\t\"\\")", "\xC3\xA9" "A\xF0\x9F\x99\x82\n\t\"\\"));
  EXPECT_TRUE(whole(R"(root ::= "é☃🙂")", "\xC3\xA9\xE2\x98\x83\xF0\x9F\x99\x82"));
  const std::string not_quote = R"(root ::= "\"" [^"\\]* "\"")";
  EXPECT_TRUE(whole(not_quote, "\"caf\xC3\xA9 \xF0\x9F\x99\x82\""));
  EXPECT_FALSE(prefix(not_quote, "\"a\\"));
  EXPECT_FALSE(prefix(not_quote, "\"\xC0\xAF"));  // overlong: not a character
  EXPECT_FALSE(prefix(not_quote, "\"\xED\xA0\x80"));  // a surrogate: not a character
  EXPECT_TRUE(whole(R"(root ::= . . .)", "a\xC3\xA9\xF0\x9F\x99\x82"));
  EXPECT_TRUE(sentence(R"(root ::= [\-\]^]+)", "-]^"));
}

// A class of random ranges, negated or not, takes the UTF-8 bytes of exactly the code
// points it names (every boundary and 100,000 random ones), and never a surrogate.
TEST(GbnfGrammar, ClassesTakeExactlyTheirCodePoints) {
  std::mt19937 rng(3);
  const auto hex = [](uint32_t cp) {
    char b[16];
    std::snprintf(b, sizeof b, "\\U%08X", cp);
    return std::string(b);
  };
  for (int round = 0; round < 6; ++round) {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    std::string cls = round % 2 ? "[^" : "[";
    for (int i = 0; i < 4; ++i) {
      uint32_t a = std::uniform_int_distribution<uint32_t>(0, 0x10FFFF)(rng) >> (round * 3 % 12);
      uint32_t b = std::min<uint32_t>(a + std::uniform_int_distribution<uint32_t>(0, 70000)(rng), 0x10FFFF);
      if (a >= 0xD800 && a <= 0xDFFF) a = 0xE000;
      if (b >= 0xD800 && b <= 0xDFFF) b = 0xD7FF;
      if (a > b) continue;
      ranges.emplace_back(a, b);
      cls += hex(a) + "-" + hex(b);
    }
    cls += "]";
    GrammarPrefix start(gbnf_grammar("root ::= " + cls));
    const auto named = [&](uint32_t cp) {
      bool in = false;
      for (const auto& [a, b] : ranges) in = in || (cp >= a && cp <= b);
      return (round % 2) ? !in : in;
    };
    std::vector<uint32_t> probes;
    for (const auto& [a, b] : ranges)
      for (const uint32_t cp : {a, b, a - 1, b + 1}) probes.push_back(cp);
    for (const uint32_t cp : {0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) probes.push_back(cp);
    for (int i = 0; i < 100000; ++i) probes.push_back(std::uniform_int_distribution<uint32_t>(0, 0x10FFFF)(rng));
    for (const uint32_t cp : probes) {
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) continue;
      GrammarPrefix p = start;
      ASSERT_EQ(p.feed(std::string_view(utf8(cp))) && p.complete(), named(cp)) << cls << " U+" << std::hex << cp;
    }
    GrammarPrefix p = start;
    EXPECT_FALSE(p.feed(std::string_view("\xED\xA0\x80"))) << cls;
  }
}

// Nullable elements nested a million deep: expanded without recursion, and refused as too
// ambiguous when the start alone would need more than GrammarPrefix::kMaxStacks stacks.
TEST(GbnfGrammar, AmbiguityHasALimitNotACrash) {
  const auto grammar = gbnf_grammar(R"(root ::= (("a"?){1000}){1000} "b")");
  EXPECT_THROW(GrammarPrefix{grammar}, Error);
  EXPECT_TRUE(whole(R"(root ::= "a"{0,1000} "b")", std::string(999, 'a') + "b"));  // {m,n} itself is not ambiguous
  EXPECT_FALSE(prefix(R"(root ::= "a"{0,1000} "b")", std::string(1001, 'a')));
  EXPECT_TRUE(whole(R"(root ::= ("a"?){20} "b")", "aaab"));  // some ambiguity is fine
  EXPECT_TRUE(whole(R"(root ::= ("a" | "a" "a"?){1,30} "b")", std::string(40, 'a') + "b"));
  // Past the limit a byte is refused (as llama.cpp's grammars, such texts need a stack per
  // reading): 500 optional a's read after the first in 500 places, each with 500 ways on.
  EXPECT_FALSE(prefix(R"(root ::= ("a"?){500} "b")", "aa"));
  EXPECT_FALSE(prefix(R"(root ::= "x" (("a"?){40}){40} "b")", "x"));  // 1,600 ways after the x
}

// Ways that meet again are one reading: 40 empty alternatives repeated three times reach
// the same stacks 64,000 ways (a limit on ways rather than on stacks refused this grammar
// at its start; the fuzzer found its kind).
TEST(GbnfGrammar, WaysThatMeetAreOneReading) {
  std::string g = R"(root ::= ("hi")";
  for (int i = 0; i < 40; ++i) g += " |";
  g += R"( "hello"){1,3} [\u00e0-\U0001F642]+)";
  EXPECT_TRUE(sentence(g, "hihello\u00e9"));
  EXPECT_TRUE(sentence(g, "\U0001F600"));  // every repetition empty
  EXPECT_FALSE(prefix(g, "hihihih"));
}

// Alternatives that share their first elements are factored into a trie: 1,100 words in
// the middle of a rule, or a class of 1,100 scattered characters, keep few stacks.
TEST(GbnfGrammar, LongAlternationsAndClassesAreFactored) {
  std::string words = R"(root ::= [a-z]+ " " ()";
  for (int i = 0; i < 1100; ++i) words += (i ? " | \"w" : "\"w") + std::to_string(i) + "\"";
  words += R"() ".")";
  EXPECT_TRUE(whole(words, "abc w1099."));
  EXPECT_TRUE(whole(words, "x w7."));
  EXPECT_FALSE(prefix(words, "x w1100"));
  std::string cjk = "root ::= [";
  std::string text;
  for (uint32_t cp = 0x4E00; cp < 0x4E00 + 2200; cp += 2) cjk += utf8(cp);
  cjk += "]+";
  for (uint32_t cp = 0x4E00; cp < 0x4E00 + 2200; cp += 2 * 97) text += utf8(cp);
  EXPECT_TRUE(sentence(cjk, text));
  EXPECT_FALSE(prefix(cjk, utf8(0x4E01)));
  EXPECT_TRUE(sentence("\xEF\xBB\xBFroot ::= \"a\"\r\n", "a"));  // a byte order mark, CRLF
}

TEST(GbnfGrammar, ErrorsNameLineAndColumn) {
  const auto says = [](const std::string& g, const std::string& where, const std::string& what) {
    const std::string e = error_of(g);
    EXPECT_NE(e.find(where), std::string::npos) << g << " -> " << e;
    EXPECT_NE(e.find(what), std::string::npos) << g << " -> " << e;
  };
  says("root ::= value\nvalu ::= \"x\"\n", "line 1, column 10", "unknown rule \"value\"");
  says("root ::= \"a\"\nroot ::= \"b\"\n", "line 2, column 1", "defined twice");
  says("start ::= \"a\"\n", "line 2", "no rule named root");
  says("root = \"a\"\n", "line 1, column 6", "expected ::=");
  says("root ::= \"abc\n", "line 2", "unterminated");
  says("root ::= \"\\q\"", "line 1, column 11", "unknown escape");
  says("root ::= [ab\n", "line 1, column 10", "[ without its ]");
  says("root ::= (\"a\"", "line 1, column 10", "( without its )");
  says("root ::= [z-a]", "line 1, column 13", "backwards");
  says("root ::= \"a\"{5000}", "line 1", "above 1000");
  says("root ::= \"a\"{3,2}", "line 1, column 13", "below m");
  says("root ::= * \"a\"", "line 1, column 10", "follows nothing");
  says("root ::= root \"a\" | \"b\"", "rule \"root\"", "left recursion");
  says("root ::= x\nx ::= y \"a\"\ny ::= \"b\"? x", "rule \"", "left recursion");
  says("root ::= []", "GBNF grammar", "has no sentence");
  says("root ::= \"a\" x\nx ::= [^\\x00-\\U0010FFFF]", "rule \"root\"", "has no sentence");
  says("root ::= \"\"*", "GBNF grammar", "left recursion");
  says("root ::= \"\\uD800\"", "line 1", "no Unicode character");
  says("root ::= \"\xC3\"", "line 1", "not UTF-8");
  says("root ::= \"a\" )", "line 1, column 14", "end of the rule");
  says(std::string(300, '(') + std::string(300, ')'), "line 1", "expected a rule name");
  says("root ::= " + std::string(300, '(') + "\"a\"" + std::string(300, ')'), "line 1", "nested deeper");
  EXPECT_EQ(error_of("root ::= \"a\"\n\n# done\n"), "");
}

}  // namespace
}  // namespace qrun
