// Scale selection for one block of 32 weights: least-weighted-squared-error search
// over candidate scales. `weights` (32 values >= 0, or nullptr for all 1) say how much
// each element's error costs: the converter passes the mean square of the activations
// each column meets (qconvert --calibrate), so columns that see large inputs are kept
// more exact.
#pragma once

#include <cstdint>

namespace qrun {

// Uniform codes of `bits` bits (2..6): x ~ d * (code - 2^(bits-1)), code in
// [0, 2^bits). Returns d as f16 bits; codes[32] receives the codes.
uint16_t search_uniform_scale(const float* x, const float* weights, int bits, uint8_t* codes);

// Code book (kQ4NLevels): x ~ d * kQ4NLevels[code], code in [0, 16).
uint16_t search_q4n_scale(const float* x, const float* weights, uint8_t* codes);

// Plain absmax uniform codes (d = absmax / (2^(bits-1) - 1)): the baseline the search must beat.
uint16_t absmax_uniform_scale(const float* x, int bits, uint8_t* codes);

}  // namespace qrun
