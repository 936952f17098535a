// Realistic weight-like test data: normal and heavy-tailed (Student-t, Laplace) rows.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace qrun::testing {

enum class Distribution { Normal, StudentT3, Laplace };

inline std::string distribution_name(Distribution d) {
  switch (d) {
    case Distribution::Normal: return "normal";
    case Distribution::StudentT3: return "student_t3";
    case Distribution::Laplace: return "laplace";
  }
  return "?";
}

inline std::vector<float> random_values(Distribution dist, int64_t n, uint32_t seed, float scale = 0.02f) {
  std::mt19937 rng(seed);
  std::vector<float> v(static_cast<size_t>(n));
  std::normal_distribution<float> normal(0.0f, scale);
  std::student_t_distribution<float> student(3.0f);
  std::exponential_distribution<float> expo(1.0f);
  std::bernoulli_distribution coin(0.5);
  for (auto& x : v) {
    switch (dist) {
      case Distribution::Normal: x = normal(rng); break;
      case Distribution::StudentT3: x = scale * student(rng); break;
      case Distribution::Laplace: x = scale * expo(rng) * (coin(rng) ? 1.0f : -1.0f); break;
    }
  }
  return v;
}

}  // namespace qrun::testing
