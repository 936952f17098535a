#include "src/runtime/json_schema_grammar.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "qrun/error.h"

namespace qrun {

namespace {

// A schema's bound is a double; the schema wrote the shortest decimal that reads as it
// (0.1, not 0.1000000000000000055511...), and a number's text is compared with that.
long double as_written(double bound) {
  if (!std::isfinite(bound)) return bound;
  char buf[40];
  const auto end = std::to_chars(buf, buf + sizeof buf - 1, bound).ptr;
  *end = '\0';
  return std::strtold(buf, nullptr);
}

using json = nlohmann::ordered_json;  // properties are written in the schema's order
using Kind = GrammarElement::Kind;
using Sequence = Grammar::Sequence;

constexpr uint32_t kMaxItemsBound = 1024;  // minItems/maxItems above this would unroll into huge grammars

const GrammarElement kSpace = GrammarElement::of(Kind::Space);
constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Keywords that say what a value may be. Beside $ref, anyOf, oneOf or allOf they would
// have to be combined with the schemas those name, which the compiler does not do.
constexpr const char* kValidation[] = {
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
    "maxItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format",
    "anyOf", "oneOf", "allOf", "$ref"};

// Keywords that constrain values beyond what the grammar enforces.
constexpr const char* kUnsupported[] = {
    "pattern", "multipleOf", "uniqueItems", "contains", "minContains", "maxContains", "minProperties", "maxProperties",
    "patternProperties", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies", "not", "if",
    "then", "else", "unevaluatedProperties", "unevaluatedItems", "additionalItems"};

Sequence literal(std::string_view text, Sequence tail = {}) {
  Sequence s;
  for (const char c : text) s.push_back(GrammarElement::byte(static_cast<uint8_t>(c)));
  s.insert(s.end(), tail.begin(), tail.end());
  return s;
}

Sequence then(Sequence head, std::initializer_list<GrammarElement> tail) {
  head.insert(head.end(), tail);
  return head;
}

class SchemaCompiler {
 public:
  explicit SchemaCompiler(const json& root, int nested_checks = 0, std::shared_ptr<Grammar> g = std::make_shared<Grammar>())
      : root_(root), nested_checks_(nested_checks), g_(std::move(g)) {}

  std::shared_ptr<const Grammar> compile_root() { return compile_root(root_, ""); }

  // The root schema's value as a rule of the grammar (no whitespace before it); `path`
  // names the schema in messages.
  uint32_t root_value(const std::string& path) { return compile(root_, path); }

  std::shared_ptr<const Grammar> compile_root(const json& schema, const std::string& path) {
    const uint32_t value = compile(schema, path);
    const uint32_t root = g_->add_rule(path.empty() ? "/" : path);
    g_->add_alternative(root, {kSpace, GrammarElement::rule(value)});
    g_->set_root(root);
    g_->factor();
    g_->check("JSON schema");
    return g_;
  }

 private:
  [[noreturn]] static void fail(const std::string& path, const std::string& why) {
    throw Error("JSON schema at \"" + (path.empty() ? std::string("/") : path) + "\": " + why);
  }

  uint32_t rule(std::vector<Sequence> alternatives) {
    const uint32_t id = g_->add_rule();
    for (Sequence& s : alternatives) g_->add_alternative(id, std::move(s));
    return id;
  }

  // Rules that do not depend on the schema, made once.
  uint32_t shared(const std::string& name, std::vector<Sequence> alternatives) {
    const auto it = shared_.find(name);
    if (it != shared_.end()) return it->second;
    return shared_[name] = rule(std::move(alternatives));
  }

  static uint32_t bound(const json& s, const char* key, const std::string& path, uint32_t fallback, uint32_t most) {
    if (!s.contains(key)) return fallback;
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) fail(path + "/" + key, "must be a non-negative integer");
    if (v.get<uint64_t>() > most) fail(path + "/" + key, "above " + std::to_string(most) + " is not supported");
    return static_cast<uint32_t>(v.get<uint64_t>());
  }

  uint32_t compile(const json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) fail(path, "false accepts no value");
      return any_value();
    }
    if (!s.is_object()) fail(path, "must be an object or a boolean");
    for (const char* keyword : kUnsupported)
      if (s.contains(keyword))
        fail(path + "/" + keyword, "is not supported (a grammar without it would let the model write what it refuses)");
    for (const char* composite : {"$ref", "anyOf", "oneOf", "allOf"})
      if (s.contains(composite))
        for (const char* keyword : kValidation)
          if (keyword != std::string_view(composite) && s.contains(keyword))
            fail(path + "/" + keyword, std::string("beside ") + composite +
                                           " is not supported (move it into the schemas " + composite + " names)");
    if (s.contains("$ref")) return reference(s["$ref"], path + "/$ref");
    if (s.contains("const") || s.contains("enum")) return listed(s, path);
    for (const char* key : {"anyOf", "oneOf"})  // oneOf's exclusivity is not enforced, as in llama.cpp
      if (s.contains(key)) {
        const json& list = s[key];
        if (!list.is_array() || list.empty()) fail(path + "/" + key, "must be a non-empty list of schemas");
        std::vector<Sequence> alternatives;
        for (size_t i = 0; i < list.size(); ++i)
          alternatives.push_back({GrammarElement::rule(compile(list[i], path + "/" + key + "/" + std::to_string(i)))});
        return rule(std::move(alternatives));
      }
    if (s.contains("allOf")) {
      const json& list = s["allOf"];
      if (!list.is_array() || list.size() != 1) fail(path + "/allOf", "is supported with exactly one schema");
      return compile(list[0], path + "/allOf/0");
    }
    if (!s.contains("type")) {
      for (const char* key : {"properties", "additionalProperties", "required"})
        if (s.contains(key)) return typed(s, "object", path);
      for (const char* key : {"items", "prefixItems", "minItems", "maxItems"})
        if (s.contains(key)) return typed(s, "array", path);
      // Without a type these keywords would let other types through; a grammar that took
      // any value would then also take, say, a number below the minimum. Their type only.
      for (const char* key : {"minLength", "maxLength", "format"})
        if (s.contains(key)) return typed(s, "string", path);
      for (const char* key : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
        if (s.contains(key)) return typed(s, "number", path);
      return any_value();
    }
    const json& type = s["type"];
    if (type.is_string()) return typed(s, type.get<std::string>(), path);
    if (!type.is_array() || type.empty()) fail(path + "/type", "must be a type name or a non-empty list of them");
    std::vector<Sequence> alternatives;
    for (const json& t : type) {
      if (!t.is_string()) fail(path + "/type", "must be a type name or a non-empty list of them");
      alternatives.push_back({GrammarElement::rule(typed(s, t.get<std::string>(), path))});
    }
    return rule(std::move(alternatives));
  }

  // enum and const: the listed values that the rest of the schema (type, bounds, ...)
  // also accepts, checked with the rest's own grammar.
  uint32_t listed(const json& s, const std::string& path) {
    const std::string key = s.contains("const") ? "const" : "enum";
    const json values = key == "const" ? json::array({s["const"]}) : s["enum"];
    if (!values.is_array() || values.empty()) fail(path + "/enum", "must be a non-empty list");
    json rest = s;
    rest.erase("const");
    rest.erase("enum");
    std::shared_ptr<const Grammar> check;
    for (const char* keyword : kValidation)
      if (rest.contains(keyword)) {
        // The rest gets a compiler of its own, which does not share this one's references:
        // a $ref in it that leads back here would nest compilers without end.
        if (nested_checks_ >= kMaxNestedChecks)
          fail(path + "/" + key, "beside other keywords, inside another such " + key + " " +
                                     std::to_string(kMaxNestedChecks) + " deep (e.g. through a $ref back to it), is not supported");
        check = SchemaCompiler(root_, nested_checks_ + 1).compile_root(rest, path);
        break;
      }
    std::vector<std::string> texts;
    for (const json& v : values) {
      if (lossy(v)) fail(path + "/" + key, "holds a whole number past 2^64 (read as " + v.dump() + ", not as written)");
      std::string text = v.dump();
      if (check) {
        GrammarPrefix p(check);
        if (!p.feed(std::string_view(text)) || !p.accepted()) continue;
      }
      texts.push_back(std::move(text));
    }
    if (texts.empty()) fail(path + "/" + key, "has no value the rest of the schema accepts");
    return literals(std::move(texts));
  }

  // nlohmann reads an integer past 64 bits as a double: written back, it would be
  // another number.
  static bool lossy(const json& v) {
    if (v.is_number_float()) return std::fabs(v.get<double>()) >= 0x1p64 && std::trunc(v.get<double>()) == v.get<double>();
    if (v.is_structured())
      for (const json& child : v)
        if (lossy(child)) return true;
    return false;
  }

  // Values written as they are (enum, const), as a trie of rules: values that share a
  // prefix share its bytes, so that a long enum keeps one stack per place in it rather
  // than one per value.
  uint32_t literals(std::vector<std::string> texts) {
    std::sort(texts.begin(), texts.end());
    texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
    return literal_tree(texts, 0, texts.size(), 0);
  }

  // texts[lo, hi) share their first `depth` bytes.
  uint32_t literal_tree(const std::vector<std::string>& texts, size_t lo, size_t hi, size_t depth) {
    const uint32_t id = g_->add_rule();
    size_t i = lo;
    if (texts[i].size() == depth) g_->add_alternative(id, {kSpace}), ++i;  // one value ends here
    while (i < hi) {
      size_t j = i;
      while (j < hi && texts[j][depth] == texts[i][depth]) ++j;
      const std::string& first = texts[i];
      const std::string& last = texts[j - 1];  // sorted: the run's common prefix is theirs
      size_t end = depth + 1;
      while (end < first.size() && end < last.size() && first[end] == last[end]) ++end;
      Sequence s = literal(std::string_view(first).substr(depth, end - depth));
      if (j - i == 1) s.push_back(kSpace);  // end == first.size(): the value is whole
      else s.push_back(GrammarElement::rule(literal_tree(texts, i, j, end)));
      g_->add_alternative(id, std::move(s));
      i = j;
    }
    return id;
  }

  uint32_t typed(const json& s, const std::string& type, const std::string& path) {
    if (type == "object") return object(s, path);
    if (type == "array") return array(s, path);
    if (type == "string") {
      const uint32_t min = bound(s, "minLength", path, 0, JsonStringLexer::kUnbounded - 1);
      const uint32_t max = bound(s, "maxLength", path, JsonStringLexer::kUnbounded, JsonStringLexer::kUnbounded - 1);
      if (min > max) fail(path + "/minLength", "is larger than maxLength");
      if (s.contains("format"))
        if (const auto f = formatted(s["format"], path + "/format")) {
          if (min > f->shortest || max < f->longest)
            fail(path + (min > f->shortest ? "/minLength" : "/maxLength"),
                 "beside format " + s["format"].dump() + " must admit all of its " + std::to_string(f->shortest) + " to " +
                     std::to_string(f->longest) + " characters");
          return f->rule;
        }
      return rule({{GrammarElement::string(min, max), kSpace}});
    }
    if (type == "number") {
      const Range r = range(s, path);
      const double lower = r.low_open ? std::nextafter(r.low, kInfinity) : r.low;
      const double upper = r.high_open ? std::nextafter(r.high, -kInfinity) : r.high;
      if (lower > upper) fail(path + "/minimum", "leaves no number between the bounds");
      // A bounded number is written without an exponent, in at most 24 characters.
      if (lower >= 1e20 || upper <= -1e20 || (lower > 0 && upper < 1e-20) || (upper < 0 && lower > -1e-20))
        fail(path + (lower >= 1e20 || lower > 0 ? "/minimum" : "/maximum"),
             "bounds a number to magnitudes qrun does not write (with bounds, from 1e-20 to 1e20, without an exponent)");
      return rule({{GrammarElement::number(as_written(lower), as_written(upper)), kSpace}});
    }
    if (type == "integer") {
      const Range r = range(s, path);
      const double low = r.low_open ? std::floor(r.low) + 1 : std::ceil(r.low);
      const double high = r.high_open ? std::ceil(r.high) - 1 : std::floor(r.high);
      constexpr double kInt64 = 9223372036854775807.0;  // 2^63 as a double
      if (low > high || low >= kInt64 || high < -kInt64) fail(path + "/minimum", "leaves no integer between the bounds");
      return rule({{GrammarElement::integer(low <= -kInt64 ? std::numeric_limits<int64_t>::min() : static_cast<int64_t>(low),
                                            high >= kInt64 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(high)),
                    kSpace}});
    }
    if (type == "boolean") return shared("boolean", {literal("true", {kSpace}), literal("false", {kSpace})});
    if (type == "null") return shared("null", {literal("null", {kSpace})});
    fail(path + "/type", "unknown type \"" + type + "\"");
  }

  // minimum, maximum and their exclusive forms: numbers, or draft 4's booleans beside
  // minimum and maximum.
  struct Range {
    double low = -kInfinity, high = kInfinity;
    bool low_open = false, high_open = false;
  };
  static Range range(const json& s, const std::string& path) {
    const auto number = [&](const char* key) {
      if (!s[key].is_number()) fail(path + "/" + key, "must be a number");
      return s[key].get<double>();
    };
    const auto flag = [&](const char* key) { return s.contains(key) && s[key].is_boolean() && s[key].get<bool>(); };
    const auto given = [&](const char* key) { return s.contains(key) && !s[key].is_boolean(); };
    Range r;
    if (s.contains("minimum")) r.low = number("minimum"), r.low_open = flag("exclusiveMinimum");
    if (s.contains("maximum")) r.high = number("maximum"), r.high_open = flag("exclusiveMaximum");
    if (given("exclusiveMinimum") && number("exclusiveMinimum") >= r.low) r.low = number("exclusiveMinimum"), r.low_open = true;
    if (given("exclusiveMaximum") && number("exclusiveMaximum") <= r.high) r.high = number("exclusiveMaximum"), r.high_open = true;
    return r;
  }

  // The formats of RFC 3339 and RFC 4122 that JSON Schema names and structured outputs
  // use: "2026-12-05", "13:45:00.5+01:00", both joined by T, and a UUID. Others (email,
  // uri, ...) are annotations, as JSON Schema 2020-12 reads format by default and
  // llama.cpp treats them: any string.
  struct Format {
    uint32_t rule, shortest, longest;  // its characters, without the quotes
  };
  std::optional<Format> formatted(const json& format, const std::string& path) {
    if (!format.is_string()) fail(path, "must be a string");
    const std::string& name = format.get_ref<const std::string&>();
    const GrammarElement digit = GrammarElement::bytes('0', '9'), quote = GrammarElement::byte('"');
    const auto r = GrammarElement::rule;
    const auto b = GrammarElement::byte;
    // Month and day together: 31 days in 01, 03, 05, 07, 08, 10, 12, 30 in 04, 06, 09,
    // 11, 28 in 02, and 02-29 in leap years (multiples of 4 but of 100 only when of 400).
    const GrammarElement not_zero = GrammarElement::bytes('1', '9');
    const uint32_t day28 = shared("day28", {{b('0'), not_zero}, {b('1'), digit}, {b('2'), GrammarElement::bytes('0', '8')}});
    const uint32_t day30 = shared("day30", {{r(day28)}, {b('2'), b('9')}, {b('3'), b('0')}});
    const uint32_t day31 = shared("day31", {{r(day30)}, {b('3'), b('1')}});
    const uint32_t long_month = shared("long_month", {{b('0'), b('1')}, {b('0'), b('3')}, {b('0'), b('5')}, {b('0'), b('7')},
                                                      {b('0'), b('8')}, {b('1'), b('0')}, {b('1'), b('2')}});
    const uint32_t short_month = shared("short_month", {{b('0'), b('4')}, {b('0'), b('6')}, {b('0'), b('9')}, {b('1'), b('1')}});
    std::vector<Sequence> by_four;  // 04, 08, ..., 96
    for (int n = 4; n < 100; n += 4) by_four.push_back({b(static_cast<uint8_t>('0' + n / 10)), b(static_cast<uint8_t>('0' + n % 10))});
    const uint32_t fourth = shared("fourth", std::move(by_four));
    const uint32_t leap_year = shared("leap_year", {{digit, digit, r(fourth)}, {r(fourth), b('0'), b('0')}, {b('0'), b('0'), b('0'), b('0')}});
    const uint32_t date_rule = shared("date", {{digit, digit, digit, digit, b('-'), r(long_month), b('-'), r(day31)},
                                               {digit, digit, digit, digit, b('-'), r(short_month), b('-'), r(day30)},
                                               {digit, digit, digit, digit, b('-'), b('0'), b('2'), b('-'), r(day28)},
                                               {r(leap_year), b('-'), b('0'), b('2'), b('-'), b('2'), b('9')}});
    const uint32_t hour = shared("hour", {{GrammarElement::bytes('0', '1'), digit}, {b('2'), GrammarElement::bytes('0', '3')}});
    const GrammarElement sixty = GrammarElement::bytes('0', '5');
    const Sequence date{r(date_rule)};
    uint32_t fraction = shared("fraction9", {{digit}});  // up to nine digits after the point
    for (int n = 8; n >= 1; --n) fraction = shared("fraction" + std::to_string(n), {{digit}, {digit, r(fraction)}});
    const uint32_t seconds_part = shared("seconds_fraction", {{}, {b('.'), r(fraction)}});
    const uint32_t offset = shared("offset", {{b('Z')}, {b('z')}, {b('+'), r(hour), b(':'), sixty, digit},
                                              {b('-'), r(hour), b(':'), sixty, digit}});
    const Sequence time{r(hour), b(':'), sixty, digit, b(':'), sixty, digit, r(seconds_part), r(offset)};
    const auto quoted = [&](std::initializer_list<Sequence> parts, uint32_t shortest, uint32_t longest) {
      Sequence s{quote};
      for (const Sequence& p : parts) s.insert(s.end(), p.begin(), p.end());
      return Format{rule({then(s, {quote, kSpace})}), shortest, longest};
    };
    if (name == "uuid") {
      const uint32_t hex = shared("hex", {{digit}, {GrammarElement::bytes('a', 'f')}, {GrammarElement::bytes('A', 'F')}});
      Sequence s;
      for (const int group : {8, 4, 4, 4, 12}) {
        if (!s.empty()) s.push_back(b('-'));
        s.insert(s.end(), static_cast<size_t>(group), r(hex));
      }
      return quoted({s}, 36, 36);
    }
    // A time is HH:MM:SS, up to nine fraction digits after a point, then Z or +HH:MM.
    if (name == "date") return quoted({date}, 10, 10);
    if (name == "time") return quoted({time}, 9, 24);
    if (name == "date-time") return quoted({date, {r(shared("T", {{b('T')}, {b('t')}}))}, time}, 20, 35);
    return std::nullopt;
  }

  // '{' then the properties in the schema's order, each optional one skippable: none[i]
  // before property i when none is written yet, some[i] when one is (a comma comes first).
  uint32_t object(const json& s, const std::string& path) {
    static const json any = true;
    std::vector<std::pair<std::string, const json*>> properties;
    if (s.contains("properties")) {
      if (!s["properties"].is_object()) fail(path + "/properties", "must be an object");
      for (const auto& [name, schema] : s["properties"].items()) properties.emplace_back(name, &schema);
    }
    const json* additional = s.contains("additionalProperties") ? &s["additionalProperties"] : nullptr;
    const bool listed = !properties.empty();
    std::vector<bool> required(properties.size(), false);
    if (s.contains("required")) {
      if (!s["required"].is_array()) fail(path + "/required", "must be a list of property names");
      for (const json& name : s["required"]) {
        if (!name.is_string()) fail(path + "/required", "must be a list of property names");
        size_t i = 0;
        while (i < properties.size() && properties[i].first != name.get_ref<const std::string&>()) ++i;
        if (i == properties.size() && additional && additional->is_boolean() && !additional->get<bool>())
          fail(path + "/required", "names \"" + name.get<std::string>() + "\", which additionalProperties false forbids");
        if (i == properties.size()) {  // required without a schema: any value
          properties.emplace_back(name.get<std::string>(), &any);
          required.push_back(false);
        }
        required[i] = true;
      }
    }
    // Without additionalProperties, an object with listed properties takes no others (as
    // llama.cpp and OpenAI's strict mode read it) and one without takes any.
    std::optional<uint32_t> extra;
    if (additional ? !(additional->is_boolean() && !additional->get<bool>()) : !listed)
      extra = compile(additional ? *additional : any, path + "/additionalProperties");

    const size_t n = properties.size();
    std::vector<uint32_t> value(n);
    for (size_t i = 0; i < n; ++i)
      value[i] = compile(*properties[i].second, path + "/properties/" + properties[i].first);
    std::vector<uint32_t> none(n + 1), some(n + 1);
    for (size_t i = 0; i <= n; ++i) none[i] = g_->add_rule(), some[i] = g_->add_rule();
    for (size_t i = 0; i < n; ++i) {
      const Sequence kv = member(literal(json(properties[i].first).dump()), value[i]);
      g_->add_alternative(none[i], then(kv, {GrammarElement::rule(some[i + 1])}));
      g_->add_alternative(some[i], then(comma(kv), {GrammarElement::rule(some[i + 1])}));
      if (!required[i]) {
        g_->add_alternative(none[i], {GrammarElement::rule(none[i + 1])});
        g_->add_alternative(some[i], {GrammarElement::rule(some[i + 1])});
      }
    }
    const Sequence close = literal("}", {kSpace});
    g_->add_alternative(none[n], close);
    g_->add_alternative(some[n], close);
    if (extra) {
      const Sequence kv = member({GrammarElement::string(0, JsonStringLexer::kUnbounded)}, *extra);
      g_->add_alternative(none[n], then(kv, {GrammarElement::rule(some[n])}));
      g_->add_alternative(some[n], then(comma(kv), {GrammarElement::rule(some[n])}));
    }
    return rule({literal("{", {kSpace, GrammarElement::rule(none[0])})});
  }

  static Sequence member(Sequence key, uint32_t value) {
    return then(std::move(key), {kSpace, GrammarElement::byte(':'), kSpace, GrammarElement::rule(value)});
  }
  static Sequence comma(const Sequence& rest) {
    Sequence s{GrammarElement::byte(','), kSpace};
    s.insert(s.end(), rest.begin(), rest.end());
    return s;
  }

  // '[' then prefixItems' schemas in turn and items' after them, between minItems and
  // maxItems of them: after[i] follows i items, unrolled as far as the bounds need.
  uint32_t array(const json& s, const std::string& path) {
    const bool tuple = s.contains("prefixItems") || (s.contains("items") && s["items"].is_array());
    const std::string prefix_key = s.contains("prefixItems") ? "prefixItems" : "items";
    std::vector<uint32_t> prefix;
    if (tuple) {
      const json& list = s[prefix_key];
      if (!list.is_array()) fail(path + "/" + prefix_key, "must be a list of schemas");
      for (size_t i = 0; i < list.size(); ++i)
        prefix.push_back(compile(list[i], path + "/" + prefix_key + "/" + std::to_string(i)));
    }
    std::optional<uint32_t> rest;  // the schema of items past the prefix
    const json* items = s.contains("items") && !s["items"].is_array() ? &s["items"] : nullptr;
    if (!items) rest = any_value();
    else if (!(items->is_boolean() && !items->get<bool>())) rest = compile(*items, path + "/items");
    const uint32_t unbounded = JsonStringLexer::kUnbounded;
    const uint32_t min = bound(s, "minItems", path, 0, kMaxItemsBound);
    uint32_t max = bound(s, "maxItems", path, unbounded, kMaxItemsBound);
    const uint32_t k = static_cast<uint32_t>(prefix.size());
    if (!rest) max = std::min(max, k);
    if (min > max) fail(path + "/minItems", "asks for more items than the schema allows");
    const auto item = [&](uint32_t i) { return GrammarElement::rule(i < k ? prefix[i] : *rest); };
    const auto separated = [&](uint32_t i, Sequence rest_of) { return i == 0 ? rest_of : comma(rest_of); };

    const uint32_t unrolled = max != unbounded ? max : std::max(k, min);
    std::vector<uint32_t> after(unrolled + 1);
    for (uint32_t i = 0; i <= unrolled; ++i) after[i] = g_->add_rule();
    const Sequence close = literal("]", {kSpace});
    for (uint32_t i = 0; i < unrolled; ++i) {
      if (i >= min) g_->add_alternative(after[i], close);
      g_->add_alternative(after[i], separated(i, {item(i), GrammarElement::rule(after[i + 1])}));
    }
    g_->add_alternative(after[unrolled], close);
    if (max == unbounded) {  // any number more, each after a comma
      if (unrolled > 0) {
        g_->add_alternative(after[unrolled], comma({item(unrolled), GrammarElement::rule(after[unrolled])}));
      } else {
        const uint32_t more = g_->add_rule();
        g_->add_alternative(more, close);
        g_->add_alternative(more, comma({item(0), GrammarElement::rule(more)}));
        g_->add_alternative(after[0], {item(0), GrammarElement::rule(more)});
      }
    }
    return rule({literal("[", {kSpace, GrammarElement::rule(after[0])})});
  }

  uint32_t reference(const json& ref, const std::string& path) {
    if (!ref.is_string()) fail(path, "must be a string");
    const std::string& target = ref.get_ref<const std::string&>();
    if (target.empty() || target[0] != '#')
      fail(path, "only references inside the schema (\"#\", \"#/$defs/...\") are supported");
    if (const auto it = references_.find(target); it != references_.end()) return it->second;
    const json* resolved = nullptr;
    try {
      resolved = &root_.at(json::json_pointer(target.substr(1)));
    } catch (const json::exception&) {
      fail(path, "\"" + target + "\" names nothing in the schema");
    }
    // Named before it is compiled, so that a schema can refer to itself (trees, lists).
    const uint32_t id = g_->add_rule(target);
    references_[target] = id;
    g_->add_alternative(id, {GrammarElement::rule(compile(*resolved, target.substr(1)))});
    return id;
  }

  // Any JSON value (a schema of true or {}), as JSON mode takes it.
  uint32_t any_value() {
    if (any_) return *any_;
    const uint32_t value = g_->add_rule(), members = g_->add_rule(), more_members = g_->add_rule(),
                   items = g_->add_rule(), more_items = g_->add_rule();
    any_ = value;
    const Sequence kv = member({GrammarElement::string(0, JsonStringLexer::kUnbounded)}, value);
    g_->add_alternative(value, literal("{", {kSpace, GrammarElement::rule(members)}));
    g_->add_alternative(value, literal("[", {kSpace, GrammarElement::rule(items)}));
    g_->add_alternative(value, {GrammarElement::string(0, JsonStringLexer::kUnbounded), kSpace});
    g_->add_alternative(value, {GrammarElement::of(Kind::Number), kSpace});
    for (const char* word : {"true", "false", "null"}) g_->add_alternative(value, literal(word, {kSpace}));
    g_->add_alternative(members, literal("}", {kSpace}));
    g_->add_alternative(members, then(kv, {GrammarElement::rule(more_members)}));
    g_->add_alternative(more_members, literal("}", {kSpace}));
    g_->add_alternative(more_members, then(comma(kv), {GrammarElement::rule(more_members)}));
    g_->add_alternative(items, literal("]", {kSpace}));
    g_->add_alternative(items, {GrammarElement::rule(value), GrammarElement::rule(more_items)});
    g_->add_alternative(more_items, literal("]", {kSpace}));
    g_->add_alternative(more_items, comma({GrammarElement::rule(value), GrammarElement::rule(more_items)}));
    return value;
  }

  static constexpr int kMaxNestedChecks = 3;
  const json& root_;
  int nested_checks_;  // enclosing compilers of an enum's or const's rest (listed)
  std::shared_ptr<Grammar> g_;
  std::map<std::string, uint32_t> shared_;
  std::map<std::string, uint32_t> references_;
  std::optional<uint32_t> any_;
};

}  // namespace

namespace {

json parsed(std::string_view text, const char* what) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw Error(std::string(what) + ": not JSON (" + e.what() + ")");
  }
  if (json_depth(j, kMaxSchemaDepth) > kMaxSchemaDepth)
    throw Error(std::string(what) + ": nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
  return j;
}

}  // namespace

std::shared_ptr<const Grammar> json_schema_grammar(std::string_view schema_text) {
  const json schema = parsed(schema_text, "JSON schema");
  return SchemaCompiler(schema).compile_root();
}

std::shared_ptr<const Grammar> tagged_json_grammar(std::string_view spec_text) {
  const json spec = parsed(spec_text, "tagged JSON");
  if (!spec.is_object() || !spec.contains("choices") || !spec["choices"].is_array() || spec["choices"].empty())
    throw Error("tagged JSON: \"choices\" must be a list of at least one {\"tag\", \"schema\"}");
  std::string separator;  // none: one choice
  if (spec.contains("separator")) {
    if (!spec["separator"].is_string()) throw Error("tagged JSON: \"separator\" must be a string");
    separator = spec["separator"].get<std::string>();
  }
  auto g = std::make_shared<Grammar>();
  const uint32_t one = g->add_rule("choice");
  for (size_t i = 0; i < spec["choices"].size(); ++i) {
    const json& c = spec["choices"][i];
    const std::string path = "/choices/" + std::to_string(i);
    if (!c.is_object() || !c.contains("tag") || !c["tag"].is_string() || !c.contains("schema"))
      throw Error("tagged JSON at \"" + path + "\": must be {\"tag\": string, \"schema\": schema}");
    const uint32_t value = SchemaCompiler(c["schema"], 0, g).root_value(path + "/schema");
    g->add_alternative(one, literal(c["tag"].get<std::string>(), {GrammarElement::rule(value)}));
  }
  uint32_t root = one;
  if (!separator.empty()) {  // root ::= one more, more ::= separator one more | ""
    const uint32_t more = g->add_rule();
    g->add_alternative(more, literal(separator, {GrammarElement::rule(one), GrammarElement::rule(more)}));
    g->add_alternative(more, {});
    root = g->add_rule("/");
    g->add_alternative(root, {GrammarElement::rule(one), GrammarElement::rule(more)});
  }
  g->set_root(root);
  g->factor();
  g->check("tagged JSON");
  return g;
}

}  // namespace qrun
