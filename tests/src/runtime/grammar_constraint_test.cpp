// JSON mode: the byte recognizer against nlohmann's parser on generated and mutated
// documents, the token constraint on a real vocabulary, and constrained generation on
// the real stories260K model.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "common/model_fixture.h"
#include "common/test_paths.h"
#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/grammar_constraint.h"
#include "qrun/model.h"
#include "src/runtime/gbnf_grammar.h"
#include "src/runtime/grammar.h"
#include "src/runtime/json_prefix.h"
#include "src/runtime/json_schema_grammar.h"

namespace qrun {
namespace {

// Random JSON objects within JsonPrefix's limits with room to spare (nesting <= 5,
// numbers <= 12 characters, whitespace runs of at most one line break and 4 spaces), so
// one mutation cannot cross a limit.
class DocWriter {
 public:
  explicit DocWriter(uint32_t seed) : rng_(seed) {}
  std::string object(int depth = 0) {
    std::string s = "{" + ws();
    const int n = pick(depth < 4 ? 4 : 2);
    for (int i = 0; i < n; ++i) s += (i ? "," + ws() : "") + str() + ws() + ":" + ws() + value(depth + 1) + ws();
    return s + "}";
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  std::string ws() {
    static const char* const kRuns[] = {"", "", " ", "\n", "\n    ", "\t", " \n  "};
    return kRuns[pick(7)];
  }
  std::string str() {
    static const char* const kPieces[] = {"a", "Tim", " ", "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\ud83d\\ude00",
                                          "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x99\x82", "0", "{", "]", ":", ","};
    std::string s = "\"";
    for (int n = pick(5); n > 0; --n) s += kPieces[pick(17)];
    return s + "\"";
  }
  std::string value(int depth) {
    static const char* const kScalars[] = {"0", "-12", "3.25", "1e5", "-0.5E-3", "123456", "true", "false", "null"};
    switch (pick(depth < 5 ? 5 : 3)) {
      case 0: return str();
      case 1:
      case 2: return kScalars[pick(9)];
      case 3: return object(depth);
      default: {
        std::string s = "[" + ws();
        const int n = pick(4);
        for (int i = 0; i < n; ++i) s += (i ? "," + ws() : "") + value(depth + 1);
        return s + (n ? ws() : "") + "]";  // one run of whitespace between two tokens
      }
    }
  }
  std::mt19937 rng_;
};

bool nlohmann_object(const std::string& s) {
  if (!nlohmann::json::accept(s)) return false;
  return nlohmann::json::parse(s).is_object();
}

// Every byte fed, and the object closed.
bool accepted_whole(const std::string& s) {
  JsonPrefix p;
  for (char c : s)
    if (!p.feed(static_cast<uint8_t>(c))) return false;
  return p.complete();
}

TEST(JsonPrefix, GeneratedObjectsAreAcceptedByteByByteAndCompleteOnlyAtTheirLastBrace) {
  DocWriter w(7);
  for (int i = 0; i < 2000; ++i) {
    const std::string doc = w.object();
    ASSERT_TRUE(nlohmann_object(doc)) << doc;
    JsonPrefix p;
    for (size_t k = 0; k < doc.size(); ++k) {
      ASSERT_TRUE(p.feed(static_cast<uint8_t>(doc[k]))) << "byte " << k << " of " << doc;
      ASSERT_EQ(p.complete(), k + 1 == doc.size()) << "byte " << k << " of " << doc;
    }
    EXPECT_TRUE(p.feed(std::string_view(" \n")));  // whitespace may follow
    EXPECT_FALSE(p.feed(static_cast<uint8_t>('x'))) << doc;
    EXPECT_FALSE(p.feed(static_cast<uint8_t>('{'))) << doc;
  }
}

// One byte inserted, deleted or replaced: the recognizer accepts the whole text exactly
// when nlohmann parses it to an object.
TEST(JsonPrefix, MutatedObjectsAgreeWithNlohmann) {
  const std::string alphabet = "{}[]:,\"\\ 0123456789.eE-+tfnaulrsx/u\x80\xC3\xA9\xED";
  DocWriter w(11);
  std::mt19937 rng(5);
  int valid = 0, invalid = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string doc = w.object();
    for (int m = 0; m < 4; ++m) {
      std::string s = doc;
      const size_t at = std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng);
      const char c = alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
      switch (m % 3) {
        case 0: s.insert(at, 1, c); break;
        case 1: s.erase(at, 1); break;
        default: s[at] = c; break;
      }
      const bool theirs = nlohmann_object(s);
      ASSERT_EQ(accepted_whole(s), theirs) << s;
      ++(theirs ? valid : invalid);
    }
  }
  EXPECT_GT(valid, 1000);  // both kinds were tried
  EXPECT_GT(invalid, 1000);
}

// The grammar of {"type": "object"} is JSON mode written as a grammar: at every byte of
// every mutated object both take or refuse it alike, and call the same texts complete.
TEST(JsonSchemaGrammar, ObjectSchemaAgreesWithJsonModeByteByByte) {
  const std::string alphabet = "{}[]:,\"\\ \n0123456789.eE-+tfnaulrsx/u\x80\xC3\xA9\xED";
  const GrammarPrefix start(json_schema_grammar(R"({"type": "object"})"));
  DocWriter w(13);
  std::mt19937 rng(17);
  for (int i = 0; i < 1500; ++i) {
    std::string s = w.object();
    if (i % 2) s[std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng)] =
        alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
    JsonPrefix mode;
    GrammarPrefix grammar = start;
    for (size_t k = 0; k < s.size(); ++k) {
      const bool took = mode.feed(static_cast<uint8_t>(s[k]));
      ASSERT_EQ(grammar.feed(static_cast<uint8_t>(s[k])), took) << "byte " << k << " of " << s;
      if (!took) break;
      ASSERT_EQ(grammar.complete(), mode.complete()) << "byte " << k << " of " << s;
      ASSERT_EQ(grammar.plain_string_room(), mode.plain_string_room()) << "byte " << k << " of " << s;
    }
  }
}

TEST(JsonPrefix, RefusesWhatParsersRejectAndWhatNeverEnds) {
  const auto whole = [](const std::string& s) { return accepted_whole(s); };
  const auto prefix = [](const std::string& s) { return JsonPrefix().feed(std::string_view(s)); };
  EXPECT_TRUE(whole(R"({"a": [1, -0.5e+3, true, null, {"b": "\ud83d\ude00"}]})"));
  EXPECT_FALSE(prefix("[1]"));  // the top level is an object
  EXPECT_FALSE(prefix("{\"a\":1}}"));
  EXPECT_FALSE(prefix("{\"a\":01"));
  EXPECT_FALSE(prefix("{\"a\":1.}"));
  EXPECT_FALSE(prefix("{\"a\":tru}"));
  EXPECT_FALSE(prefix("{\"a\":[1,]"));
  EXPECT_FALSE(prefix("{\"a\" \"b\""));
  EXPECT_FALSE(prefix("{\"a\n"));           // raw control character in a string
  EXPECT_FALSE(prefix("{\"\\x"));           // unknown escape
  EXPECT_FALSE(prefix("{\"\\ud800x"));      // high surrogate without its low one
  EXPECT_FALSE(prefix("{\"\\udc00"));       // low surrogate alone
  EXPECT_FALSE(prefix("{\"\\ud800\\u0041"));
  EXPECT_FALSE(prefix("{\"\xC0\x80"));      // overlong
  EXPECT_FALSE(prefix("{\"\xE0\x80"));      // overlong
  EXPECT_FALSE(prefix("{\"\xED\xA0"));      // UTF-8 surrogate
  EXPECT_FALSE(prefix("{\"\xF4\x90"));      // past U+10FFFF
  EXPECT_FALSE(prefix("{\"\xC3\""));        // character cut by the quote
  // The limits: whitespace runs, number length, depth.
  EXPECT_TRUE(prefix("{\n" + std::string(JsonPrefix::kMaxWhitespace, ' ')));
  EXPECT_FALSE(prefix("{\n" + std::string(JsonPrefix::kMaxWhitespace + 1, ' ')));
  EXPECT_FALSE(prefix("{\n\n"));
  EXPECT_TRUE(prefix("{\r\n"));
  EXPECT_FALSE(prefix("{\n\r"));
  EXPECT_FALSE(prefix("{\r\r"));
  EXPECT_TRUE(whole("{\"a\":" + std::string(JsonPrefix::kMaxNumberLength, '1') + "}"));
  EXPECT_FALSE(prefix("{\"a\":" + std::string(JsonPrefix::kMaxNumberLength + 1, '1')));
  EXPECT_FALSE(prefix("{\"a\":" + std::string(JsonPrefix::kMaxNumberLength - 1, '1') + "."));  // no room for a digit
  EXPECT_TRUE(whole("{\"a\":1.5e-99}"));
  EXPECT_FALSE(prefix("{\"a\":1e100"));
  EXPECT_TRUE(prefix("{\"a\":" + std::string(JsonPrefix::kMaxDepth - 1, '[')));
  EXPECT_FALSE(prefix("{\"a\":" + std::string(JsonPrefix::kMaxDepth, '[')));
  // A refused byte leaves the state as it was.
  JsonPrefix p;
  ASSERT_TRUE(p.feed(std::string_view("{\"a\":1")));
  EXPECT_FALSE(p.feed(std::string_view("2x")));
  EXPECT_FALSE(p.feed(static_cast<uint8_t>(']')));
  EXPECT_TRUE(p.feed(std::string_view("2}")));
  EXPECT_TRUE(p.complete());
}

// Special tokens are never allowed, but for an end of generation (EOS, end of turn) once
// the reply is whole.
TEST(GrammarConstraint, TokensOfAnObjectAreAllowedInTurnAndSpecialTokensNever) {
  Model m = test::stories_model(DType::Q8);
  const Tokenizer& tok = m.tokenizer();
  GrammarConstraint json(tok);
  const std::string text = R"({"name": "Tim", "age": 3, "toys": ["car", "ball"], "happy": true, "note": "a\nb"})";
  const std::vector<int32_t> ids = tok.encode(text, false, false);
  ASSERT_GT(ids.size(), 10u);
  for (int32_t id : tok.eos_ids()) EXPECT_FALSE(json.allows(id));
  EXPECT_FALSE(json.allows(tok.bos_id()));
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(json.allows(ids[i])) << "token " << i << " '" << tok.token_text(ids[i]) << "'";
    EXPECT_FALSE(json.complete());
    json.accept(ids[i]);
  }
  EXPECT_TRUE(json.complete());
  for (int32_t id : tok.eos_ids()) EXPECT_TRUE(json.allows(id));
  EXPECT_FALSE(json.allows(tok.bos_id()));
  EXPECT_THROW(json.accept(ids.back()), Error);

  // mask() keeps exactly the tokens allows() takes: at the start, those that are
  // whitespace or open the object.
  json.reset();
  std::vector<float> logits(static_cast<size_t>(tok.vocab_size()), 1.0f);
  const int allowed = json.mask(logits);
  int finite = 0;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const bool kept = std::isfinite(logits[static_cast<size_t>(id)]);
    finite += kept;
    EXPECT_EQ(kept, json.allows(id)) << id;
    if (kept) {
      const std::string b = tok.token_text(id);
      const size_t first = b.find_first_not_of(" \t\r\n");
      EXPECT_TRUE(first == std::string::npos || b[first] == '{') << "'" << b << "'";
    }
  }
  EXPECT_EQ(allowed, finite);
  EXPECT_GT(allowed, 0);

}

// A kept special token stands for its text: allowed where the grammar takes that text
// (Mistral's [ARGS] after a call's name), never elsewhere, and never when not kept. On
// Qwen3's vocabulary with <|im_start|> as the marker.
TEST(GrammarConstraint, KeptSpecialTokensStandForTheirText) {
  const Tokenizer qwen(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));
  const std::vector<int32_t> marker = qwen.encode("<|im_start|>", false, true);
  ASSERT_EQ(marker.size(), 1u);
  const std::string spec = R"({"choices": [{"tag": "now<|im_start|>", "schema": {"type": "integer"}}]})";
  GrammarConstraint kept(qwen, marker), plain(qwen);
  kept.set_tagged_json(spec);
  plain.set_tagged_json(spec);
  EXPECT_FALSE(kept.allows(marker[0]));  // "now" first
  for (const int32_t id : qwen.encode("now", false, false)) kept.accept(id), plain.accept(id);
  EXPECT_TRUE(kept.allows(marker[0]));
  EXPECT_FALSE(plain.allows(marker[0]));
  std::vector<float> logits(static_cast<size_t>(qwen.vocab_size()), 0.0f);
  kept.mask(logits);
  EXPECT_TRUE(std::isfinite(logits[static_cast<size_t>(marker[0])]));
  kept.accept(marker[0]);
  EXPECT_FALSE(kept.allows(qwen.eos_ids()[0]));
  for (const int32_t id : qwen.encode("42", false, false)) kept.accept(id);
  EXPECT_TRUE(kept.allows(qwen.eos_ids()[0]));  // a whole sentence (more digits may follow)
  EXPECT_THROW(GrammarConstraint::check_tagged_json(R"({"choices": [{"tag": "x", "schema": {"type": "int"}}]})"), Error);
}

// In every state along an object (inside keys and values, escapes, numbers, between
// tokens), allows() equals feeding the token's bytes to a copy of the text so far, and
// mask() (a trie walk outside strings) keeps exactly those tokens: on stories260K's
// vocabulary and on Qwen3's, whose 151,669 tokens include `","` and `":"`, which close one
// string and open the next.
TEST(GrammarConstraint, AllowsEqualsFeedingTheBytesInEveryState) {
  Model m = test::stories_model(DType::Q8);
  const Tokenizer qwen(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));
  const std::string text = R"({"name":"Tim","toys":["car","ball"],"note":"a\nb \u00e9","n":-1.5e3,"ok":true})";
  for (const Tokenizer* tok : {&m.tokenizer(), &qwen}) {
    GrammarConstraint json(*tok);
    JsonPrefix so_far;
    const std::vector<int32_t> ids = tok->encode(text, false, false);
    std::vector<float> logits(static_cast<size_t>(tok->vocab_size()));
    for (size_t i = 0; i < ids.size(); ++i) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      json.mask(logits);
      for (int32_t id = 0; id < tok->vocab_size(); ++id) {
        JsonPrefix trial = so_far;
        const std::string b = tok->token_text(id);
        const bool feeds = !b.empty() && trial.feed(std::string_view(b));
        ASSERT_EQ(json.allows(id), feeds) << "token " << id << " '" << b << "' after " << i << " tokens";
        ASSERT_EQ(std::isinf(logits[static_cast<size_t>(id)]), !feeds) << "token " << id << " after " << i << " tokens";
      }
      json.accept(ids[i]);
      ASSERT_TRUE(so_far.feed(std::string_view(tok->token_text(ids[i]))));
    }
    EXPECT_TRUE(json.complete());
  }
}

// With a schema, allows() is feeding the bytes to the schema's grammar, and mask() refuses
// exactly what allows() refuses (it skips tokens whose first byte is refused).
TEST(GrammarConstraint, WithASchemaAllowsAndMaskEqualFeedingTheGrammar) {
  Model m = test::stories_model(DType::Q8);
  const Tokenizer& tok = m.tokenizer();
  const std::string schema = R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
      "toys": {"type": "array", "items": {"enum": ["car", "ball"]}}, "n": {"type": "number"}}, "required": ["name"]})";
  const std::string text = R"({"name":"Tim","toys":["car","ball"],"n":-1.5e3})";
  GrammarConstraint json(tok);
  json.set_schema(schema);
  GrammarPrefix so_far(json_schema_grammar(schema));
  const std::vector<int32_t> ids = tok.encode(text, false, false);
  std::vector<float> logits(static_cast<size_t>(tok.vocab_size()));
  for (size_t i = 0; i < ids.size(); ++i) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    const int allowed = json.mask(logits);
    int counted = 0;
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
      GrammarPrefix trial = so_far;
      const std::string b = tok.token_text(id);
      const bool feeds = !b.empty() && trial.feed(std::string_view(b));
      ASSERT_EQ(json.allows(id), feeds) << "token " << id << " '" << b << "' after " << i << " tokens";
      ASSERT_EQ(std::isinf(logits[static_cast<size_t>(id)]), !feeds) << "token " << id << " after " << i << " tokens";
      counted += feeds;
    }
    EXPECT_EQ(allowed, counted);
    json.accept(ids[i]);
    ASSERT_TRUE(so_far.feed(std::string_view(tok.token_text(ids[i]))));
  }
  EXPECT_TRUE(json.complete());
  EXPECT_THROW(json.set_schema(R"({"type": "string", "pattern": "x"})"), Error);
  EXPECT_TRUE(json.complete());  // a refused schema leaves the constraint as it was
  json.set_object();  // any object again
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (tok.token_text(id) == "[") {
      EXPECT_FALSE(json.allows(id));
    }
    if (tok.token_text(id) == "{") {
      EXPECT_TRUE(json.allows(id));
    }
  }
}

// A GBNF grammar whose class repeats: the mask's walk takes bytes that lead back to the
// same state by table, and keeps exactly the tokens allows() takes (each fed in full), on
// Qwen3's vocabulary, in every state along a text.
TEST(GrammarConstraint, GbnfMaskEqualsAllowsWhereAClassRepeats) {
  const Tokenizer qwen(load_hf_tokenizer(test::shared_dir() / "tokenizers/qwen3"));
  GrammarConstraint constraint(qwen);
  constraint.set_gbnf("root ::= [a-z ,.]+ (\"!\" | \"?\" [0-9]{1,3})\n");
  const std::vector<int32_t> ids = qwen.encode("once upon a time, there was?42", false, false);
  std::vector<float> logits(static_cast<size_t>(qwen.vocab_size()));
  int loops_seen = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    const int allowed = constraint.mask(logits);
    int counted = 0;
    for (int32_t id = 0; id < qwen.vocab_size(); ++id) {
      const bool ok = constraint.allows(id);
      ASSERT_EQ(std::isinf(logits[static_cast<size_t>(id)]), !ok) << "token " << id << " '" << qwen.token_text(id)
                                                                   << "' after " << i << " tokens";
      counted += ok;
    }
    EXPECT_EQ(allowed, counted);
    loops_seen += allowed > 40000;  // inside the repeated class most of the vocabulary is allowed
    constraint.accept(ids[i]);
  }
  EXPECT_GT(loops_seen, 3);
}

struct Constrained {
  std::string text;
  GenerationStats stats;
};

Constrained generate_text(Model& m, uint64_t seed, GrammarConstraint* json, int n) {
  m.reset();
  SamplerConfig sc;
  sc.temperature = 1.0f;
  sc.seed = seed;
  Sampler s(sc);
  GenerateOptions go;
  go.n_predict = n;
  go.constraint = json;
  if (json) json->reset();
  Constrained out;
  out.stats = generate(m, m.tokenizer().encode("Tim liked to play", true, false), s, go, [&](int32_t id) {
    out.text += m.tokenizer().token_text(id);
    return true;
  });
  return out;
}

// A story model writes no JSON of its own accord; constrained, every reply is a prefix
// of an object, and one that ends on its own (StopReason::Complete) is an object.
TEST(GrammarConstraint, StoriesModelRepliesAreObjectsOrTheirPrefixes) {
  Model m = test::stories_model(DType::Q8);
  GrammarConstraint json(m.tokenizer());
  int complete = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const Constrained free = generate_text(m, seed, nullptr, 60);
    EXPECT_FALSE(JsonPrefix().feed(std::string_view(free.text))) << free.text;
    const Constrained r = generate_text(m, seed, &json, 300);
    EXPECT_TRUE(JsonPrefix().feed(std::string_view(r.text))) << r.text;
    if (r.stats.stop == StopReason::Complete) {
      ++complete;
      EXPECT_TRUE(nlohmann_object(r.text)) << r.text;
      EXPECT_EQ(r.text.back(), '}');
    } else {
      EXPECT_EQ(r.stats.stop, StopReason::TokenLimit) << r.text;
      EXPECT_FALSE(accepted_whole(r.text)) << r.text;
    }
  }
  RecordProperty("complete_replies", complete);
}

// With a schema, a reply that ends on its own parses and has what the schema asks, in its
// order; the others are prefixes of such replies.
TEST(GrammarConstraint, StoriesModelRepliesFollowTheSchema) {
  Model m = test::stories_model(DType::Q8);
  GrammarConstraint json(m.tokenizer());
  const std::string schema = R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 8}, "age": {"type": "integer"},
      "pets": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 2}, "happy": {"type": "boolean"}},
      "required": ["name", "age", "happy"]})";
  json.set_schema(schema);
  const auto grammar = json_schema_grammar(schema);
  int complete = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const Constrained r = generate_text(m, seed, &json, 400);
    EXPECT_TRUE(GrammarPrefix(grammar).feed(std::string_view(r.text))) << r.text;
    if (r.stats.stop != StopReason::Complete) {
      EXPECT_EQ(r.stats.stop, StopReason::TokenLimit) << r.text;
      continue;
    }
    ++complete;
    const auto reply = nlohmann::ordered_json::parse(r.text);
    ASSERT_TRUE(reply.is_object()) << r.text;
    ASSERT_TRUE(reply.contains("name") && reply["name"].is_string()) << r.text;
    EXPECT_LE(reply["name"].get<std::string>().size(), 8u * 4) << r.text;
    ASSERT_TRUE(reply.contains("age") && reply["age"].is_number_integer()) << r.text;
    ASSERT_TRUE(reply.contains("happy") && reply["happy"].is_boolean()) << r.text;
    EXPECT_EQ(reply.begin().key(), "name") << r.text;
    if (reply.contains("pets")) {
      ASSERT_TRUE(reply["pets"].is_array());
      EXPECT_LE(reply["pets"].size(), 2u);
      for (const auto& p : reply["pets"]) EXPECT_TRUE(p == "cat" || p == "dog") << r.text;
    }
    for (const auto& [key, value] : reply.items())
      EXPECT_TRUE(key == "name" || key == "age" || key == "pets" || key == "happy") << r.text;
  }
  RecordProperty("complete_replies", complete);
  EXPECT_GT(complete, 0);
}

// With a GBNF grammar, every reply is text of the grammar, whole when it ends on its own
// (at EOS, or where nothing can follow), a prefix of one when cut by the token budget.
TEST(GrammarConstraint, StoriesModelRepliesFollowAGbnfGrammar) {
  Model m = test::stories_model(DType::Q8);
  GrammarConstraint constraint(m.tokenizer());
  const std::string gbnf = R"(root ::= " " name " " verb " " thing ("," " " thing){0,2} "."
name  ::= "Tim" | "Lily" | "Ben"
verb  ::= "saw" | "liked" | "found"
thing ::= [a-z]{2,10}
)";
  constraint.set_gbnf(gbnf);
  const std::regex sentence(R"( (Tim|Lily|Ben) (saw|liked|found) [a-z]{2,10}(, [a-z]{2,10}){0,2}\.)");
  int whole = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    const Constrained r = generate_text(m, seed, &constraint, 80);
    EXPECT_TRUE(GrammarPrefix(gbnf_grammar(gbnf)).feed(std::string_view(r.text))) << r.text;
    if (r.stats.stop == StopReason::TokenLimit) continue;
    ++whole;
    EXPECT_TRUE(std::regex_match(r.text, sentence)) << r.text;
  }
  EXPECT_GT(whole, 0);
}

}  // namespace
}  // namespace qrun
