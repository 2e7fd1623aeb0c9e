// Row reductions shared by the host kernels (sums in a fixed order, so that results do not depend
// on the thread count; the max of a row).
#ifndef PLORA_CPU_SUMS_H
#define PLORA_CPU_SUMS_H

#include <cmath>
#include <cstdint>
#include <vector>

#include "rows.h"

namespace plora {

// Row partials summed in row order: the result does not depend on the thread count or timing,
// so training runs are reproducible bit for bit.
inline double ordered_sum(const std::vector<double>& partial) {
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

// Sum of v² over a row in double, in eight lanes (then summed in lane order): the order is fixed, so
// the result is too, and the adds no longer wait on one another.
inline double sum_squares_f64(const float* v, int64_t n) {
  typedef double d4 __attribute__((vector_size(32)));
  typedef float f4 __attribute__((vector_size(16)));
  d4 lo = {}, hi = {};
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) {
    f4 a, b;
    __builtin_memcpy(&a, v + t, sizeof a);
    __builtin_memcpy(&b, v + t + 4, sizeof b);
    const d4 da = __builtin_convertvector(a, d4), db = __builtin_convertvector(b, d4);
    lo += da * da;
    hi += db * db;
  }
  double s = 0.0;
  for (int l = 0; l < 4; ++l) s += lo[l] + hi[l];
  for (; t < n; ++t) s += static_cast<double>(v[t]) * v[t];
  return s;
}

// max of a row, NaNs ignored (as std::fmax does), eight lanes at a time; -inf for an all-NaN row
inline float row_max(const float* x, int64_t n) {
  v8 m = v8_splat(-INFINITY);
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) {
    const v8 v = v8_load(x + t);
    m = v > m ? v : m;  // false for a NaN: it is skipped
  }
  float best = -INFINITY;
  for (int l = 0; l < 8; ++l) best = std::fmax(best, m[l]);
  for (; t < n; ++t) best = std::fmax(best, x[t]);
  return best;
}

}  // namespace plora

#endif
