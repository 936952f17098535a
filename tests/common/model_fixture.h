// Converts the shipped stories260K model once per test binary, per type, into a
// scratch folder, so tests share one conversion.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/test_paths.h"
#include "convert/converter.h"
#include "qrun/model.h"

namespace qrun::test {

inline const std::filesystem::path& converted_stories(DType type) {
  static ScratchDir dir;
  static std::map<DType, std::filesystem::path> done;
  auto it = done.find(type);
  if (it != done.end()) return it->second;
  const auto out = dir / ("stories260K." + std::string(dtype_name(type)));
  ConvertOptions opt;
  opt.weight_type = type;
  opt.threads = 2;
  convert_hf_checkpoint(stories_dir().string(), out.string(), opt);
  return done.emplace(type, out).first->second;
}

// stories260K of that type on one thread (the model is too small for more to pay), with
// the given context (0: its own).
inline Model stories_model(DType type, int context = 0) {
  RuntimeOptions ro;
  ro.threads = 1;
  ro.context = context;
  return Model(converted_stories(type).string(), ro);
}

}  // namespace qrun::test
