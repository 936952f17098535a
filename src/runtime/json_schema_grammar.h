// Compiles a JSON schema to a Grammar whose sentences are the JSON texts the schema
// accepts (OpenAI's response_format json_schema, llama.cpp's --json-schema). The subset is
// what structured-output schemas use: type (or a list of types), properties, required,
// additionalProperties, items, prefixItems, minItems, maxItems, minLength, maxLength,
// minimum/maximum/exclusiveMinimum/exclusiveMaximum (a bounded number is written without
// exponent), format date, time,
// date-time and uuid (other formats are annotations), enum, const, anyOf, oneOf (as anyOf), allOf of one schema, $ref to
// "#", "#/$defs/..." or "#/definitions/...". Properties are written in the schema's order,
// the optional ones skippable, as llama.cpp's converter writes them; without
// additionalProperties an object with properties takes no others. A validation keyword
// outside the subset (pattern, multipleOf, uniqueItems, ...) is an
// error naming it: a grammar that ignored it would let the model write what the schema
// refuses. Whitespace and numbers are bounded as in JSON mode.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>

#include "src/format/json_depth.h"
#include "src/runtime/grammar.h"

namespace qrun {

// Throws qrun::Error naming the offending place ("/properties/age/type") for a schema
// that is not JSON, uses a keyword outside the subset, or refers to itself before any
// value is written.
std::shared_ptr<const Grammar> json_schema_grammar(std::string_view schema_text);

// Text that is a tag (a literal) and right after it a JSON value its schema accepts, for one of the
// choices, and with a separator any number more, each after it: tool calls written as a
// name and JSON arguments (Mistral's `get_weather[ARGS]{"city": "Paris"}`). The spec:
// {"choices": [{"tag": "get_weather[ARGS]", "schema": {...}}, ...], "separator":
// "[TOOL_CALLS]"} (no separator: one). Each schema's references are its own. Throws
// qrun::Error naming the place as json_schema_grammar does, under "/choices/i/schema".
std::shared_ptr<const Grammar> tagged_json_grammar(std::string_view spec_text);

// Deeper schemas are refused: the compiler recurses into them, and so does nlohmann's
// dump(), which qserve calls on a schema from a request only after checking its depth.
constexpr size_t kMaxSchemaDepth = 128;

}  // namespace qrun
