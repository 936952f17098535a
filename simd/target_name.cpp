// Reports which Highway target dynamic dispatch picked on this CPU.
#include "simd/hwy_targets.h"

#include "hwy/targets.h"
#include "simd/int8_vnni.h"
#include "simd/kernels.h"

namespace qrun {

const char* simd_target_name() {
  // The chosen target is the best one both supported by the CPU and compiled in.
  const int64_t chosen = hwy::SupportedAndGeneratedTargets()[0];
  if (int8_vnni_active(chosen)) return int8_vnni_copy_name(chosen);
  return hwy::TargetName(chosen);
}

}  // namespace qrun
