// JSON schemas compiled to grammars: what each keyword lets through and what it refuses,
// byte by byte, and the errors that name a schema's unsupported or broken places.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "qrun/error.h"
#include "src/runtime/grammar.h"
#include "src/runtime/json_schema_grammar.h"

namespace qrun {
namespace {

// The whole text fed byte by byte, and nothing but whitespace left to come.
bool whole(const std::string& schema, const std::string& text) {
  GrammarPrefix p(json_schema_grammar(schema));
  for (const char c : text)
    if (!p.feed(static_cast<uint8_t>(c))) return false;
  return p.complete();
}

// The text can still be completed to one the schema accepts.
bool prefix(const std::string& schema, const std::string& text) {
  return GrammarPrefix(json_schema_grammar(schema)).feed(std::string_view(text));
}

std::string error_of(const std::string& schema) {
  try {
    json_schema_grammar(schema);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::string kPerson = R"({"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer"},
    "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 3},
    "ok": {"type": "boolean"}},
  "required": ["name", "age"]})";

TEST(JsonSchemaGrammar, ObjectsTakeTheirPropertiesInOrderTheOptionalOnesSkippable) {
  EXPECT_TRUE(whole(kPerson, R"({"name":"Tim","age":3})"));
  EXPECT_TRUE(whole(kPerson, "{ \"name\" : \"Tim\",\n  \"age\": -0, \"ok\": false }"));
  EXPECT_TRUE(whole(kPerson, R"({"name":"Tim","age":3,"tags":[],"ok":true})"));
  EXPECT_TRUE(whole(kPerson, R"({"name":"Tim","age":3,"tags":["a","b","a"]})"));
  EXPECT_TRUE(prefix(kPerson, R"({"name":"Tim")"));
  EXPECT_FALSE(whole(kPerson, R"({"name":"Tim"})"));                      // age is required
  EXPECT_FALSE(prefix(kPerson, R"({"age":3,"name":"Tim"})"));             // schema order
  EXPECT_FALSE(prefix(kPerson, R"({"name":"Tim","age":3,"x":1})"));       // no other properties
  EXPECT_FALSE(prefix(kPerson, R"({"name":"Tim","age":3,"age":4})"));     // no repeats
  EXPECT_FALSE(prefix(kPerson, R"({"name":"abcdefghijklm")"));            // maxLength 12
  EXPECT_FALSE(prefix(kPerson, R"({"name":"Tim","age":1.5)"));            // an integer
  EXPECT_FALSE(prefix(kPerson, R"({"name":"Tim","age":1e3)"));
  EXPECT_FALSE(prefix(kPerson, R"({"name":"Tim","age":3,"tags":["c")"));  // enum
  EXPECT_FALSE(prefix(kPerson, R"({"name":"Tim","age":3,"tags":["a","a","a","a")"));  // maxItems 3
  EXPECT_FALSE(prefix(kPerson, R"({"name":"Tim","age":3,"ok":1)"));
  EXPECT_FALSE(prefix(kPerson, "[")); // the top level is the schema's
  // Required names without a schema of their own take any value.
  EXPECT_TRUE(whole(R"({"properties": {"a": {"type": "integer"}}, "required": ["b"]})", R"({"a":1,"b":[{}]})"));
  EXPECT_FALSE(whole(R"({"properties": {"a": {"type": "integer"}}, "required": ["b"]})", R"({"a":1})"));
  EXPECT_TRUE(whole(R"({"type": "object", "required": ["a"]})", R"({"a":1,"b":2})"));  // no properties: any others
  // Annotations beside $ref and anyOf are fine.
  EXPECT_TRUE(whole(R"({"$defs": {"S": {"type": "string"}}, "$ref": "#/$defs/S", "description": "d", "title": "t"})", R"("x")"));
  EXPECT_TRUE(whole(R"({"anyOf": [{"type": "string"}, {"type": "null"}], "default": null, "title": "t"})", "null"));
}

TEST(JsonSchemaGrammar, AdditionalPropertiesAndObjectsWithoutProperties) {
  const std::string counts = R"({"type": "object", "additionalProperties": {"type": "integer"}})";
  EXPECT_TRUE(whole(counts, R"({})"));
  EXPECT_TRUE(whole(counts, R"({"a":1,"b":2,"\u00e9":3})"));
  EXPECT_FALSE(prefix(counts, R"({"a":"x")"));
  EXPECT_TRUE(whole(R"({"type": "object"})", R"({"a":[1,{"b":null}],"c":"d"})"));
  const std::string listed_and_more = R"({"properties": {"id": {"type": "integer"}}, "additionalProperties": true})";
  EXPECT_TRUE(whole(listed_and_more, R"({"id":1,"x":[true]})"));
  EXPECT_TRUE(whole(listed_and_more, R"({"x":{}})"));
  EXPECT_FALSE(prefix(R"({"properties": {"id": {"type": "integer"}}, "additionalProperties": false})", R"({"x")"));
}

TEST(JsonSchemaGrammar, ArraysCountTheirItemsAndTuplesTakeTheirSchemasInTurn) {
  const std::string two_to_three = R"({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3})";
  EXPECT_FALSE(whole(two_to_three, "[1]"));
  EXPECT_TRUE(whole(two_to_three, "[1, 2.5]"));
  EXPECT_TRUE(whole(two_to_three, "[1,2,-3e2]"));
  EXPECT_FALSE(prefix(two_to_three, "[1,2,3,"));
  EXPECT_FALSE(prefix(two_to_three, "[]"));
  const std::string at_least_two = R"({"type": "array", "minItems": 2})";
  EXPECT_FALSE(whole(at_least_two, "[[]]"));
  EXPECT_TRUE(whole(at_least_two, R"([[],"x",3,4,5,6])"));
  const std::string pair = R"({"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false})";
  EXPECT_TRUE(whole(pair, R"(["a",1])"));
  EXPECT_TRUE(whole(pair, R"(["a"])"));
  EXPECT_FALSE(prefix(pair, R"([1)"));
  EXPECT_FALSE(prefix(pair, R"(["a",1,)"));
  const std::string pair_then_booleans = R"({"prefixItems": [{"type": "string"}], "items": {"type": "boolean"}})";
  EXPECT_TRUE(whole(pair_then_booleans, R"(["a",true,false,true])"));
  EXPECT_FALSE(prefix(pair_then_booleans, R"(["a",1)"));
  // A long list needs no deeper stack than a short one (a rule in tail position returns to nothing).
  std::string many = "[0";
  for (int i = 1; i < 5000; ++i) many += "," + std::to_string(i);
  EXPECT_TRUE(whole(R"({"type": "array", "items": {"type": "integer"}})", many + "]"));
}

TEST(JsonSchemaGrammar, StringsCountCharactersNotBytes) {
  const std::string two = R"({"type": "string", "minLength": 2, "maxLength": 2})";
  EXPECT_TRUE(whole(two, R"("ab")"));
  EXPECT_FALSE(whole(two, R"("a")"));
  EXPECT_FALSE(prefix(two, R"("abc)"));
  EXPECT_TRUE(whole(two, "\"\xC3\xA9\xE4\xB8\xAD\""));           // two characters, five bytes
  EXPECT_TRUE(whole(two, R"("\u00e9\n")"));                       // escapes count as one
  EXPECT_FALSE(whole(two, R"("\ud83d\ude00")"));                  // one character (a surrogate pair)
  EXPECT_TRUE(whole(two, R"("\ud83d\ude00x")"));
  EXPECT_FALSE(whole(two, "\"\xF0\x9F\x99\x82\""));               // one character, four bytes
  EXPECT_FALSE(prefix(R"({"type": "string"})", "\"\xC0\xAF"));   // overlong UTF-8, as JSON mode
  EXPECT_FALSE(prefix(R"({"type": "string"})", "\"a\nb"));         // control characters are escaped
}

TEST(JsonSchemaGrammar, EnumsConstantsUnionsAndTypeLists) {
  const std::string colour = R"({"enum": ["red", "green", 7, null, {"a": [1]}]})";
  for (const char* ok : {R"("red")", R"("green")", "7", "null", R"({"a":[1]})"}) EXPECT_TRUE(whole(colour, ok)) << ok;
  EXPECT_FALSE(prefix(colour, R"("blue)"));
  EXPECT_FALSE(whole(colour, R"("re")"));
  EXPECT_FALSE(prefix(colour, "70"));
  // Values that are prefixes of others, and a long list (a trie of rules: one stack per
  // place, not one per value).
  const std::string numbers = R"({"enum": [1, 12, 123, 2]})";
  for (const char* ok : {"1 ", "12 ", "123 ", "2 "}) EXPECT_TRUE(whole(numbers, ok)) << ok;
  EXPECT_FALSE(prefix(numbers, "13"));
  EXPECT_FALSE(prefix(numbers, "1234"));
  std::string many = R"({"enum": [)";
  for (int i = 0; i < 10000; ++i) many += (i ? ",\"item-" : "\"item-") + std::to_string(i * 7) + "\"";
  many += "]}";
  EXPECT_TRUE(whole(many, R"("item-69993")"));
  EXPECT_TRUE(whole(many, R"("item-0")"));
  EXPECT_FALSE(prefix(many, R"("item-69994)"));
  EXPECT_FALSE(whole(many, R"("item-6999")"));
  EXPECT_TRUE(whole(R"({"const": "yes"})", R"("yes")"));
  EXPECT_FALSE(prefix(R"({"const": "yes"})", R"("no)"));
  // Beside enum or const, the rest of the schema filters the listed values.
  EXPECT_FALSE(prefix(R"({"type": "string", "enum": ["a", 1, null]})", "n"));
  EXPECT_TRUE(whole(R"({"type": "string", "enum": ["a", 1, null]})", R"("a")"));
  EXPECT_TRUE(whole(R"({"type": "integer", "minimum": 5, "enum": [1, 2, 7]})", "7 "));
  EXPECT_FALSE(prefix(R"({"type": "integer", "minimum": 5, "enum": [1, 2, 7]})", "1"));
  const std::string maybe = R"({"type": ["string", "null"]})";
  EXPECT_TRUE(whole(maybe, R"("x")"));
  EXPECT_TRUE(whole(maybe, "null"));
  EXPECT_FALSE(prefix(maybe, "1"));
  const std::string either = R"({"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}]})";
  EXPECT_TRUE(whole(either, "[1,2]"));
  EXPECT_FALSE(prefix(either, "1.5"));
  // Two object schemas that share their first property: both stay open until they part.
  const std::string shapes = R"({"oneOf": [
      {"properties": {"kind": {"const": "circle"}, "r": {"type": "number"}}, "required": ["kind", "r"]},
      {"properties": {"kind": {"const": "rect"}, "w": {"type": "number"}}, "required": ["kind", "w"]}]})";
  EXPECT_TRUE(whole(shapes, R"({"kind":"circle","r":1})"));
  EXPECT_TRUE(whole(shapes, R"({"kind":"rect","w":2})"));
  EXPECT_FALSE(prefix(shapes, R"({"kind":"circle","w")"));
}

TEST(JsonSchemaGrammar, NumbersAndTheEndOfTheText) {
  // A number at the top level is whole only when nothing but whitespace can follow.
  const std::string integer = R"({"type": "integer"})";
  GrammarPrefix p(json_schema_grammar(integer));
  ASSERT_TRUE(p.feed(std::string_view("12")));
  EXPECT_FALSE(p.complete());
  ASSERT_TRUE(p.feed(std::string_view(" ")));
  EXPECT_TRUE(p.complete());
  EXPECT_FALSE(p.feed(static_cast<uint8_t>('3')));
  EXPECT_FALSE(prefix(integer, "01"));
  EXPECT_TRUE(prefix(integer, "-"));
  EXPECT_FALSE(whole(integer, "- "));
  EXPECT_TRUE(whole(R"({"type": "number"})", "-0.5e-3 "));
  EXPECT_TRUE(whole(R"({"type": "boolean"})", "true"));
  EXPECT_FALSE(prefix(R"({"type": "boolean"})", "tru "));
  EXPECT_TRUE(whole("{}", R"( {"a": [1, "b", null]} )"));
  EXPECT_TRUE(whole("true", "[]"));
}

// minimum and maximum (and their exclusive forms) bound integers digit by digit: a prefix
// is refused as soon as no more digits can bring it within the bounds.
TEST(JsonSchemaGrammar, IntegerBoundsRefuseDigitsThatCannotFit) {
  const std::string age = R"({"type": "integer", "minimum": 18, "maximum": 120})";
  for (const char* ok : {"18", "99", "120", "42"}) EXPECT_TRUE(whole(age, std::string(ok) + " ")) << ok;
  EXPECT_TRUE(prefix(age, "1"));   // 1 -> 18..19, 100..120
  EXPECT_FALSE(whole(age, "1 "));
  EXPECT_FALSE(prefix(age, "13 "));
  EXPECT_FALSE(prefix(age, "121"));
  EXPECT_FALSE(prefix(age, "-"));
  EXPECT_FALSE(prefix(age, "0"));
  EXPECT_FALSE(prefix(age, "1000"));
  EXPECT_TRUE(prefix(age, "12"));  // 120
  EXPECT_FALSE(prefix(age, "125"));
  const std::string cold = R"({"type": "integer", "exclusiveMinimum": -10, "exclusiveMaximum": 0})";
  EXPECT_TRUE(whole(cold, "-9 "));
  EXPECT_FALSE(prefix(cold, "-10"));
  EXPECT_FALSE(prefix(cold, "0"));
  EXPECT_FALSE(prefix(cold, "-0"));
  EXPECT_FALSE(prefix(cold, "5"));
  const std::string draft4 = R"({"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 2.5})";
  EXPECT_FALSE(prefix(draft4, "0"));
  EXPECT_TRUE(whole(draft4, "2 "));
  EXPECT_FALSE(prefix(draft4, "3"));
  const std::string natural = R"({"type": "integer", "minimum": 0})";
  EXPECT_TRUE(whole(natural, "9223372036854775807 "));
  EXPECT_FALSE(prefix(natural, "9223372036854775808"));
  EXPECT_FALSE(prefix(natural, "-1"));
  EXPECT_TRUE(whole(R"({"type": "integer"})", "-9223372036854775808 "));
  // As an object's property the number ends at the comma or brace.
  EXPECT_TRUE(whole(R"({"properties": {"n": {"type": "integer", "maximum": 5}}})", R"({"n":5})"));
  EXPECT_FALSE(prefix(R"({"properties": {"n": {"type": "integer", "maximum": 5}}})", R"({"n":6)"));
}

// A number with bounds is a decimal (no exponent) whose every prefix can still end
// within them.
TEST(JsonSchemaGrammar, NumberBoundsRefuseDigitsThatCannotFit) {
  const std::string unit = R"({"type": "number", "minimum": 0, "maximum": 1})";
  for (const char* ok : {"0 ", "1 ", "0.5 ", "0.999 ", "1.0 ", "1.000 ", "-0 "}) EXPECT_TRUE(whole(unit, ok)) << ok;
  EXPECT_FALSE(prefix(unit, "-0.1"));
  EXPECT_FALSE(prefix(unit, "1.01"));
  EXPECT_FALSE(prefix(unit, "2"));
  EXPECT_FALSE(prefix(unit, "10"));
  EXPECT_FALSE(prefix(unit, "1e"));  // no exponent with bounds
  const std::string temp = R"({"type": "number", "exclusiveMinimum": -273.15, "maximum": 1e3})";
  EXPECT_TRUE(whole(temp, "-273.14 "));
  EXPECT_TRUE(whole(temp, "1000 "));
  EXPECT_TRUE(whole(temp, "-273.1 "));
  EXPECT_FALSE(prefix(temp, "-273.15"));    // more digits only go further down
  EXPECT_FALSE(prefix(temp, "-274"));
  EXPECT_FALSE(prefix(temp, "1000.1"));
  EXPECT_TRUE(prefix(temp, "99"));          // 99, 990..999
  EXPECT_FALSE(prefix(temp, "99999"));
  EXPECT_TRUE(whole(R"({"properties": {"p": {"type": "number", "minimum": 0.5}}})", R"({"p":0.5})"));
  EXPECT_FALSE(prefix(R"({"properties": {"p": {"type": "number", "minimum": 0.5}}})", R"({"p":0.4)"));
  EXPECT_TRUE(whole(R"({"type": "number"})", "1e5 "));  // without bounds, any number
  EXPECT_FALSE(prefix(R"({"minimum": 0})", "-1"));          // without a type: a number within them
  EXPECT_TRUE(whole(R"({"minimum": 0})", "3.5 "));
  EXPECT_FALSE(prefix(R"({"format": "date"})", R"("x)"));
}

// Bounds are the decimals the schema wrote (0.1, not the double's 0.1000000000000000055...),
// and whatever digits the recognizer lets through can still end within them: random walks
// over the characters it allows always reach a whole number (before, [0.1, 0.2] let a model
// write 0.1000000000000000050000 and then refused every way to go on).
TEST(JsonSchemaGrammar, BoundedNumbersNeverLeadToADeadEnd) {
  std::mt19937 rng(7);
  for (const char* schema :
       {R"({"type": "number", "minimum": 0.1, "maximum": 0.2})", R"({"type": "number", "minimum": 1e-7, "maximum": 2e-7})",
        R"({"type": "number", "minimum": 0.001, "maximum": 0.002})", R"({"type": "number", "exclusiveMinimum": 0, "maximum": 1e-7})",
        R"({"type": "number", "exclusiveMinimum": -273.15, "maximum": 1e3})", R"({"type": "number", "minimum": -0.3, "maximum": -0.1})",
        R"({"type": "number", "minimum": 12345.678, "maximum": 12345.679})", R"({"type": "number", "minimum": 0.1, "maximum": 0.1})"}) {
    const auto grammar = json_schema_grammar(schema);
    for (int walk = 0; walk < 300; ++walk) {
      GrammarPrefix p(grammar);
      std::string text;
      while (!p.complete() && text.size() < 40) {
        std::string allowed;
        for (const char c : std::string(text.empty() ? "0123456789.-" : "0123456789.- ")) {  // ' ' ends it
          GrammarPrefix q = p;
          if (q.feed(static_cast<uint8_t>(c))) allowed += c;
        }
        ASSERT_FALSE(allowed.empty()) << schema << ": nothing can follow '" << text << "'";
        const char c = allowed[rng() % allowed.size()];
        ASSERT_TRUE(p.feed(static_cast<uint8_t>(c)));
        text += c;
        if (c == ' ') break;
      }
      EXPECT_TRUE(p.accepted()) << schema << ": '" << text << "'";
    }
  }
  EXPECT_TRUE(whole(R"({"type": "number", "minimum": 0.1, "maximum": 0.2})", "0.1 "));
  EXPECT_TRUE(whole(R"({"type": "number", "minimum": 0.1, "maximum": 0.2})", "0.2 "));
  EXPECT_FALSE(prefix(R"({"type": "number", "minimum": 0.1, "maximum": 0.2})", "0.2000000000000000001"));
  EXPECT_TRUE(whole(R"({"type": "number", "minimum": 1e-7, "maximum": 2e-7})", "0.0000002 "));
  for (const char* unwritable : {R"({"type": "number", "minimum": 1e20})", R"({"type": "number", "minimum": 1e308})",
                                 R"({"type": "number", "maximum": -1e21})", R"({"type": "number", "minimum": 1e-30, "maximum": 2e-30})"})
    EXPECT_THROW(json_schema_grammar(unwritable), Error) << unwritable;
}

TEST(JsonSchemaGrammar, DateTimeAndUuidFormats) {
  const std::string date = R"({"type": "string", "format": "date"})";
  EXPECT_TRUE(whole(date, R"("2026-12-05")"));
  EXPECT_FALSE(prefix(date, R"("2026-13)"));
  EXPECT_FALSE(prefix(date, R"("2026-12-32)"));
  // Each month its days; February 29 in leap years only.
  for (const char* ok : {"2026-01-31", "2026-04-30", "2024-02-29", "2000-02-29", "0400-02-29", "1996-02-29", "2026-02-28"})
    EXPECT_TRUE(whole(date, "\"" + std::string(ok) + "\"")) << ok;
  for (const char* bad : {"2026-04-31", "2026-02-30", "2023-02-29", "1900-02-29", "2100-02-29", "2026-06-31", "2026-00-01"})
    EXPECT_FALSE(whole(date, "\"" + std::string(bad) + "\"")) << bad;
  EXPECT_FALSE(prefix(date, R"("26-)"));
  const std::string time = R"({"type": "string", "format": "time"})";
  EXPECT_TRUE(whole(time, R"("23:59:59Z")"));
  EXPECT_TRUE(whole(time, R"("08:05:00.123+01:00")"));
  EXPECT_FALSE(prefix(time, R"("24:)"));
  EXPECT_FALSE(whole(time, R"("10:00:00")"));  // RFC 3339 wants the offset
  const std::string stamp = R"({"type": "string", "format": "date-time"})";
  EXPECT_TRUE(whole(stamp, R"("2026-12-05T03:04:05.5-07:30")"));
  EXPECT_FALSE(prefix(stamp, R"("2026-12-05 03)"));
  const std::string uuid = R"({"type": "string", "format": "uuid"})";
  EXPECT_TRUE(whole(uuid, R"("123e4567-e89b-12d3-A456-426614174000")"));
  EXPECT_FALSE(prefix(uuid, R"("123e4567e)"));
  EXPECT_FALSE(prefix(uuid, R"("123g)"));
  EXPECT_TRUE(whole(R"({"type": "string", "format": "date", "minLength": 10, "maxLength": 10})", R"("2026-12-05")"));
  // Other formats are annotations: any string, within its lengths.
  EXPECT_TRUE(whole(R"({"type": "string", "format": "email", "maxLength": 9})", R"("a@b.c")"));
  EXPECT_FALSE(prefix(R"({"type": "string", "format": "uri", "maxLength": 3})", R"("http)"));
}

TEST(JsonSchemaGrammar, ReferencesReachDefinitionsAndMayRecurse) {
  const std::string tree = R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
      "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
      "required": ["value", "children"]}}})";
  EXPECT_TRUE(whole(tree, R"({"value":1,"children":[{"value":2,"children":[]},{"value":3,"children":[{"value":4,"children":[]}]}]})"));
  EXPECT_FALSE(prefix(tree, R"({"value":1,"children":[{"value":"x")"));
  const std::string list = R"({"definitions": {"cell": {"type": ["null", "object"], "properties": {"next": {"$ref": "#/definitions/cell"}}}},
      "$ref": "#/definitions/cell"})";
  EXPECT_TRUE(whole(list, R"({"next":{"next":{"next":null}}})"));
}

TEST(JsonSchemaGrammar, ErrorsNameThePlaceAndTheReason) {
  const auto says = [](const std::string& schema, const std::string& place, const std::string& reason) {
    const std::string e = error_of(schema);
    EXPECT_NE(e.find("\"" + place + "\""), std::string::npos) << schema << " -> " << e;
    EXPECT_NE(e.find(reason), std::string::npos) << schema << " -> " << e;
  };
  says(R"({"type": "string", "pattern": "^a"})", "/pattern", "not supported");
  says(R"({"properties": {"to": {"type": "string", "format": 5}}})", "/properties/to/format", "must be a string");
  says(R"({"type": "number", "minimum": 1, "exclusiveMaximum": 1})", "/minimum", "no number");
  says(R"({"type": "integer", "minimum": 5, "maximum": 4})", "/minimum", "no integer");
  says(R"({"type": "integer", "maximum": "5"})", "/maximum", "must be a number");
  says(R"({"properties": {"a": {"type": "int"}}})", "/properties/a/type", "unknown type \"int\"");
  says(R"({"type": "array", "minItems": 3, "maxItems": 2})", "/minItems", "more items");
  says(R"({"type": "array", "maxItems": 100000})", "/maxItems", "not supported");
  says(R"({"type": "string", "minLength": -1})", "/minLength", "non-negative");
  says(R"({"$ref": "#/$defs/missing"})", "/$ref", "names nothing");
  says(R"({"$ref": "https://example.com/schema.json"})", "/$ref", "inside the schema");
  says(R"({"anyOf": []})", "/anyOf", "non-empty");
  says(R"({"allOf": [{}, {}]})", "/allOf", "exactly one");
  says(R"({"properties": {"a": false}})", "/properties/a", "accepts no value");
  says("[1]", "/", "must be an object");
  says(R"({"type": "string", "maxLength": 2, "const": "abcdef"})", "/const", "no value the rest");
  says(R"({"type": "string", "const": 1})", "/const", "no value the rest");
  says(R"({"const": 123456789012345678901234567890})", "/const", "past 2^64");
  says(R"({"type": "string", "format": "date", "maxLength": 5})", "/maxLength", "10 to 10 characters");
  says(R"({"type": "string", "format": "uuid", "minLength": 40})", "/minLength", "36 to 36");
  says(R"({"anyOf": [{"type": "string"}, {"type": "integer"}], "maxLength": 2})", "/maxLength", "beside anyOf");
  says(R"({"allOf": [{"type": "string"}], "maxLength": 2})", "/maxLength", "beside allOf");
  says(R"({"type": "integer", "anyOf": [{"type": "string"}]})", "/type", "beside anyOf");
  says(R"({"$defs": {"S": {"type": "string"}}, "$ref": "#/$defs/S", "maxLength": 3})", "/maxLength", "beside $ref");
  says(R"({"type": "object", "required": ["a"], "additionalProperties": false})", "/required", "forbids");
  EXPECT_NE(error_of(R"({"$ref": "#"})").find("left recursion"), std::string::npos);
  EXPECT_NE(error_of(R"({"anyOf": [{"$ref": "#/$defs/a"}], "$defs": {"a": {"$ref": "#"}}})").find("left recursion"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type": "object")").find("not JSON"), std::string::npos);
  // A const beside other keywords is checked against a grammar of the rest, compiled apart:
  // a $ref in the rest back to the const nested those compilers until the stack ran out
  // (found by fuzz_json_schema). Such checks nest a few deep, not without end.
  const std::string recursive = R"({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
      "properties": {"k": {"const": 1, "items": {"$ref": "#/$defs/node"}}}}}})";
  says(recursive, "/$defs/node/properties/k/const", "inside another such const 3 deep");
  EXPECT_EQ(error_of(R"({"const": [1], "items": {"const": 1, "type": "integer"}})"), "");
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += R"({"items":)";
  deep += "{}" + std::string(10000, '}');
  EXPECT_NE(error_of(deep).find("nested deeper"), std::string::npos);
  EXPECT_EQ(error_of(kPerson), "");
}

// Tags and JSON values (Mistral's tool calls): each choice's tag, then right after it a
// value its own schema accepts; more after the separator when there is one; a broken
// spec or schema is an error naming its place.
TEST(TaggedJsonGrammar, TagsThenTheirSchemasValues) {
  const std::string spec = R"({"choices": [{"tag": "age:", "schema": {"type": "integer"}},
      {"tag": "names:", "schema": {"type": "array", "items": {"$ref": "#/$defs/n"}, "$defs": {"n": {"type": "string"}}}}],
      "separator": ";"})";
  const auto takes = [&](const std::string& s, const std::string& text) {
    GrammarPrefix p(tagged_json_grammar(s));
    return p.feed(std::string_view(text)) && p.accepted();
  };
  EXPECT_TRUE(takes(spec, "age:3"));
  EXPECT_TRUE(takes(spec, R"(names:["a"] ;age:3;names:[])"));
  EXPECT_FALSE(takes(spec, "age: 3"));
  EXPECT_FALSE(takes(spec, R"(age:"3")"));
  EXPECT_FALSE(takes(spec, R"(names:[1])"));  // its $ref is its own schema's
  EXPECT_FALSE(takes(spec, "age:3;"));
  EXPECT_FALSE(takes(spec, "height:3"));
  const std::string one = R"({"choices": [{"tag": "age:", "schema": {"type": "integer"}}]})";
  EXPECT_TRUE(takes(one, "age:3 "));
  EXPECT_FALSE(takes(one, "age:3;age:4"));
  const auto error_of = [](const std::string& s) {
    try {
      tagged_json_grammar(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of(R"({"choices": []})").find("\"choices\""), std::string::npos);
  EXPECT_NE(error_of(R"({"choices": [{"tag": 1, "schema": {}}]})").find("/choices/0"), std::string::npos);
  EXPECT_NE(error_of(R"({"choices": [{"tag": "a", "schema": {"type": "int"}}]})").find("/choices/0/schema/type"),
            std::string::npos);
  EXPECT_NE(error_of("{").find("not JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"choices": [{"tag": "a", "schema": {}}], "separator": 1})").find("\"separator\""), std::string::npos);
  EXPECT_EQ(error_of(spec), "");
}

TEST(Grammar, LeftRecursionIsRefusedAndRightRecursionTaken) {
  Grammar left;
  const uint32_t a = left.add_rule();
  left.add_alternative(a, {GrammarElement::of(GrammarElement::Kind::Space), GrammarElement::rule(a),
                           GrammarElement::byte('x')});
  left.add_alternative(a, {GrammarElement::byte('y')});
  EXPECT_THROW(left.check("test grammar"), Error);

  auto right = std::make_shared<Grammar>();  // x* y
  const uint32_t r = right->add_rule();
  right->add_alternative(r, {GrammarElement::byte('x'), GrammarElement::rule(r)});
  right->add_alternative(r, {GrammarElement::byte('y')});
  right->set_root(r);
  right->check("test grammar");
  GrammarPrefix p(right);
  EXPECT_TRUE(p.feed(std::string_view(std::string(10000, 'x'))));
  EXPECT_FALSE(p.complete());
  EXPECT_FALSE(p.feed(std::string_view("xz")));  // all or nothing
  EXPECT_TRUE(p.feed(static_cast<uint8_t>('y')));
  EXPECT_TRUE(p.complete());
  EXPECT_THROW(right->add_alternative(r, {GrammarElement::rule(7)}), Error);
}

}  // namespace
}  // namespace qrun
