// Chat-template evaluation: walks the parsed template with Python-like values and
// returns the rendered text. Runtime errors (bad types, raise_exception) name the place.
#pragma once

#include <string>

#include "src/chat/jinja_parser.h"

namespace qrun::jinja {

std::string render(const Source& src, const Body& body, Dict globals);

}  // namespace qrun::jinja
