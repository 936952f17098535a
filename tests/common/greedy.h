// Greedy generation of n tokens (EOS ignored) from a fresh conversation: the output
// the golden and GPU-offload tests compare.
#pragma once

#include <cstdint>
#include <vector>

#include "qrun/generate.h"
#include "qrun/model.h"
#include "qrun/sampler.h"

namespace qrun::test {

inline std::vector<int32_t> greedy(Model& m, const std::vector<int32_t>& prompt, int n) {
  m.reset();
  SamplerConfig sc;
  sc.temperature = 0;
  Sampler sampler(sc);
  GenerateOptions go;
  go.n_predict = n;
  go.ignore_eos = true;
  std::vector<int32_t> out;
  generate(m, prompt, sampler, go, [&](int32_t id) {
    out.push_back(id);
    return true;
  });
  return out;
}

}  // namespace qrun::test
