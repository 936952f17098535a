#pragma once

#include <string>
#include <string_view>

namespace qrun {

// Splits a per-layer tensor name: ("layers.7.w2", "layers.") -> 7, "w2"; the prefix is
// "layers." for qrun's names, "model.layers." for Hugging Face's, "blk." for GGUF's.
// False for any other name, and for a layer number that is empty, not all digits or longer
// than 9 digits: names come from strangers' files, so they never reach std::stoi.
bool split_layer_name(std::string_view name, std::string_view prefix, int* layer, std::string* role);

}  // namespace qrun
