// GPT-2's byte-to-unicode map: every byte becomes a printable code point, so byte-level
// vocabularies are strings. Printable ASCII and Latin-1 map to themselves; the other 68
// bytes to U+0100 onwards.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace qrun {

std::string bytes_to_byte_level(std::string_view bytes);
// The inverse; returns false if a character is not in the map.
bool byte_level_to_bytes(std::string_view text, std::string* out);

}  // namespace qrun
