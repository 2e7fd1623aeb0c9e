// Kernel family random_fill on the host: random fills from the Philox stream.
#include <omp.h>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/philox.h"
#include "plora/random_fill.h"
#include "rows.h"

using namespace plora;

extern "C" {

int plora_cpu_random_fill(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                          int distribution, float a, float b, uint64_t seed, uint64_t stream) {
  PLORA_TRY(check_matrix_args("out", out, dtype, ld, rows, cols));
  PLORA_TRY(check_distribution(distribution));
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    char* row = row_at(out, dtype, ld, i);
    for (int64_t j = 0; j < cols; ++j) {
      const uint64_t e = static_cast<uint64_t>(i * cols + j);
      float v = distribution == PLORA_UNIFORM ? a + (b - a) * philox_uniform(seed, stream, e)
                                              : a + b * philox_normal(seed, stream, e);
      store_f32(row, dtype, j, v);
    }
  }
  return ok();
}

}  // extern "C"
