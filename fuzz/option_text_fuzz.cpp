// libFuzzer target: the option texts parsed by hand rather than by CLI11 (--prefetch /
// QRUN_PREFETCH, qconvert's --type and --tensor-type). The first byte picks the parser,
// the rest is the text. Anything may be refused with std::invalid_argument (or false);
// nothing may crash, and what is accepted must be within the ranges each parser promises.
// Patterns are compiled, not searched: a user's own regex may be slow on purpose.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "quant/type_policy.h"
#include "simd/prefetch.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace qrun;
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        const PrefetchConfig c = parse_prefetch_config(text);
        if (c.matvec_rows != 1 && c.matvec_rows != 4) std::abort();
        if (c.level == PrefetchLevel::None) {
          if (c.distance != 0 || c.distance_wide != 0) std::abort();
        } else {
          for (int64_t d : {c.distance, c.distance_wide})
            if (d < 64 || d > (1 << 20)) std::abort();
        }
        (void)describe(c);
        break;
      }
      case 1: {
        const TensorTypeRule rule = parse_tensor_type_rule(text);
        if (rule.pattern.empty() || rule.type == DType::BF16 || text != rule.pattern + "=" + std::string(dtype_name(rule.type)))
          std::abort();
        break;
      }
      case 2: {
        TypePolicy p;
        if (parse_type_policy(text, &p) && type_policy_name(p) != text) std::abort();
        break;
      }
    }
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
