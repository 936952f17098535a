// Runs a check once per SIMD target compiled into qrun and supported by this CPU, with
// dynamic dispatch forced to that target (as Highway's own tests do).
#pragma once

#include "simd/hwy_targets.h"  // same target set as the library

#include <gtest/gtest.h>

#include <vector>

#include "hwy/targets.h"

namespace qrun::testing {

template <class Check>
void for_each_target(Check&& check) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    check();
  }
  hwy::SetSupportedTargetsForTest(0);  // back to the real CPU
}

}  // namespace qrun::testing
