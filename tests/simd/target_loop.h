// Runs a check once per SIMD target compiled into qrun and supported by this CPU, with
// dynamic dispatch forced to that target (as Highway's own tests do), and once more for
// a target whose int8 kernels have a vpdpbusd copy this CPU can run (simd/int8_vnni.h).
#pragma once

#include "simd/hwy_targets.h"  // same target set as the library

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hwy/targets.h"
#include "simd/int8_vnni.h"

namespace qrun::testing {

template <class Check>
void for_each_target(Check&& check) {
  const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  ASSERT_FALSE(targets.empty());
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    set_int8_vnni_allowed(false);
    {
      SCOPED_TRACE(hwy::TargetName(target));
      check();
    }
    set_int8_vnni_allowed(true);
    if (int8_vnni_active(target)) {
      SCOPED_TRACE(int8_vnni_copy_name(target));
      check();
    }
  }
  hwy::SetSupportedTargetsForTest(0);  // back to the real CPU
}

}  // namespace qrun::testing
