// Q4 scale selection: least-squared-error search over candidate scales.
#pragma once

#include <cstdint>

namespace qrun {

// Chooses the f16 scale d and codes[32] (0..15, x ~ d*(code-8)) for one block of 32
// values, minimising sum (x - d*(code-8))^2 over a set of candidate scales. Returns d
// as f16 bits.
uint16_t q4_search_scale(const float* x, uint8_t* codes);

// Plain absmax Q4 (d = absmax/7, codes clamped): the baseline the search must beat.
uint16_t q4_absmax_scale(const float* x, uint8_t* codes);

}  // namespace qrun
