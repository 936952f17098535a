#include "qrun/dtype.h"

namespace qrun {

namespace {
// Indexed by id; ids 6-8 are retired (dtype_is_retired).
constexpr std::string_view kNames[] = {"f32", "f16", "bf16", "q8", "q4", "q4n", "", "", "", "q2k", "q6", "q5", "q3", "mxfp4"};
}

std::string_view dtype_name(DType t) {
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) && !kNames[i].empty() ? kNames[i] : std::string_view("unknown");
}

bool dtype_from_name(std::string_view name, DType* out) {
  for (uint32_t i = 0; i < std::size(kNames); ++i) {
    if (!kNames[i].empty() && kNames[i] == name) {
      *out = static_cast<DType>(i);
      return true;
    }
  }
  return false;
}

}  // namespace qrun
