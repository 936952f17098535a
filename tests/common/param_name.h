// GoogleTest parameter names may only hold [A-Za-z0-9_]: "llama-spm" -> "llama_spm".
#pragma once

#include <cctype>
#include <string>

namespace qrun::test {

inline std::string param_name(std::string name) {
  for (char& c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)))) c = '_';
  return name;
}

}  // namespace qrun::test
