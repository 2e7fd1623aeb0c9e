// Rotary position embedding on the host (plora/rope.h): rows in parallel; each row's cos and sin
// are computed once and serve all its heads.
#include <omp.h>

#include <cmath>
#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/rope.h"
#include "rows.h"

using namespace plora;

namespace {

// c[j], s[j] of one row, rounded to the dtype; the angle is the fp32 product Hugging Face forms
void angles(int32_t position, const float* inv_freq, int64_t half, int dtype, float* c, float* s) {
  for (int64_t j = 0; j < half; ++j) {
    const float angle = static_cast<float>(position) * inv_freq[j];
    c[j] = round_f32(dtype, static_cast<float>(std::cos(static_cast<double>(angle))));
    s[j] = round_f32(dtype, static_cast<float>(std::sin(static_cast<double>(angle))));
  }
}

template <bool kBackward>
int rotate(void* x, int64_t ld_x, int dtype, int64_t rows, int64_t heads, int64_t head_dim, const int32_t* positions,
           int64_t ld_pos, const float* inv_freq) {
  PLORA_TRY(check_rope_args(x, ld_x, dtype, rows, heads, head_dim, positions, ld_pos, inv_freq));
  const int64_t half = head_dim / 2, cols = heads * head_dim;
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> row(static_cast<size_t>(cols)), c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < rows; ++t) {
      char* p = static_cast<char*>(x) + t * ld_x * dtype_size(dtype);
      row_to_f32(p, dtype, cols, row.data());
      angles(positions[t * ld_pos], inv_freq, half, dtype, c.data(), s.data());
      for (int64_t h = 0; h < heads; ++h) {
        float* v = row.data() + h * head_dim;
        for (int64_t j = 0; j < half; ++j) {
          const float x1 = v[j], x2 = v[j + half];
          if (kBackward) {
            v[j] = x1 * c[j] + x2 * s[j];
            v[j + half] = x2 * c[j] - x1 * s[j];
          } else {
            v[j] = round_f32(dtype, x1 * c[j]) + round_f32(dtype, -x2 * s[j]);
            v[j + half] = round_f32(dtype, x2 * c[j]) + round_f32(dtype, x1 * s[j]);
          }
        }
      }
      f32_to_row(row.data(), dtype, cols, p);
    }
  }
  return ok();
}

}  // namespace

extern "C" {

int plora_cpu_rope(void* x, int64_t ld_x, int dtype, int64_t rows, int64_t heads, int64_t head_dim,
                   const int32_t* positions, int64_t ld_pos, const float* inv_freq) {
  return rotate<false>(x, ld_x, dtype, rows, heads, head_dim, positions, ld_pos, inv_freq);
}

int plora_cpu_rope_backward(void* dx, int64_t ld_dx, int dtype, int64_t rows, int64_t heads, int64_t head_dim,
                            const int32_t* positions, int64_t ld_pos, const float* inv_freq) {
  return rotate<true>(dx, ld_dx, dtype, rows, heads, head_dim, positions, ld_pos, inv_freq);
}

}  // extern "C"
