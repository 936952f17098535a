#include "src/format/layer_tensor_name.h"

namespace qrun {

bool split_layer_name(std::string_view name, std::string_view prefix, int* layer, std::string* role) {
  if (!name.starts_with(prefix)) return false;
  const size_t start = prefix.size();
  const size_t dot = name.find('.', start);
  if (dot == std::string_view::npos || dot == start || dot - start > 9) return false;
  int n = 0;
  for (size_t i = start; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    n = n * 10 + (name[i] - '0');
  }
  *layer = n;
  *role = std::string(name.substr(dot + 1));
  return true;
}

}  // namespace qrun
