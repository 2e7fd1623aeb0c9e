// Kernel family reductions on the host: sum of squares, non-finite count.
#include <omp.h>

#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/reductions.h"
#include "rows.h"
#include "sums.h"

using namespace plora;

namespace {

// Sum of squares of a matrix: rows in parallel, their sums added in row order.
double sum_squares_of(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols) {
  std::vector<double> partial(static_cast<size_t>(rows));
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> buffer(static_cast<size_t>(dtype == PLORA_F32 ? 0 : cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) partial[i] = sum_squares_f64(f32_row(x, dtype, ld, i, cols, buffer.data()), cols);
  }
  return ordered_sum(partial);
}

}  // namespace

extern "C" {

int plora_cpu_sum_squares(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, double* out) {
  PLORA_TRY(check_matrix_args("x", x, dtype, ld, rows, cols));
  PLORA_TRY(check_out_pointer("out", out));
  *out = sum_squares_of(x, dtype, ld, rows, cols);
  return ok();
}

int plora_cpu_sum_squares_many(int count, const int64_t* x, const int* dtypes, const int64_t* ld, const int64_t* rows,
                               const int64_t* cols, double* out) {
  PLORA_TRY(check_sum_squares_many_args(count, x, dtypes, ld, rows, cols, out));
  double total = 0.0;
  for (int t = 0; t < count; ++t)
    total += sum_squares_of(reinterpret_cast<const void*>(x[t]), dtypes[t], ld[t], rows[t], cols[t]);
  *out = total;
  return ok();
}

int plora_cpu_count_nonfinite(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols,
                              int64_t* count) {
  PLORA_TRY(check_matrix_args("x", x, dtype, ld, rows, cols));
  PLORA_TRY(check_out_pointer("count", count));
  int64_t total = 0;
#pragma omp parallel reduction(+ : total) if (parallel_worth(rows * cols))
  {
    std::vector<float> buffer(static_cast<size_t>(dtype == PLORA_F32 ? 0 : cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const float* v = f32_row(x, dtype, ld, i, cols, buffer.data());
      int64_t bad = 0;
      for (int64_t j = 0; j < cols; ++j) bad += (float_bits(v[j]) & 0x7f800000u) == 0x7f800000u;  // inf or NaN
      total += bad;
    }
  }
  *count = total;
  return ok();
}

}  // extern "C"
