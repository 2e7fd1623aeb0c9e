// RMSNorm on the host (plora/rmsnorm.h): rows in parallel; the weight gradient by column blocks,
// each summing over all rows in row order, so it does not depend on the thread count.
#include <omp.h>

#include <cmath>
#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/rmsnorm.h"
#include "rows.h"
#include "sums.h"

using namespace plora;

namespace {

constexpr int64_t kColumnBlock = 256;

// Σ a·b in double, in four lanes added in lane order (a fixed order, and adds that need not wait)
double dot(const float* a, const float* b, int64_t n) {
  double s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (int l = 0; l < 4; ++l) s[l] += static_cast<double>(a[j + l]) * b[j + l];
  for (; j < n; ++j) s[0] += static_cast<double>(a[j]) * b[j];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

}  // namespace

extern "C" {

int plora_cpu_rmsnorm(const void* x, int64_t ld_x, const void* w, void* y, int64_t ld_y, float* rstd, int dtype,
                      int64_t rows, int64_t cols, float eps) {
  PLORA_TRY(check_rmsnorm_args(x, ld_x, w, y, ld_y, dtype, rows, cols, eps));
  if (rows == 0) return ok();
  const std::vector<float> weight = pack_f32(w, dtype, cols, 1, cols, cols, false);
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> xs(static_cast<size_t>(cols)), out(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      row_to_f32(static_cast<const char*>(x) + i * ld_x * dtype_size(dtype), dtype, cols, xs.data());
      const float r = cols == 0 ? 0.0f
          : static_cast<float>(1.0 / std::sqrt(sum_squares_f64(xs.data(), cols) / static_cast<double>(cols) + eps));
      if (rstd != nullptr) rstd[i] = r;
      for (int64_t j = 0; j < cols; ++j) out[j] = weight[j] * round_f32(dtype, xs[j] * r);
      f32_to_row(out.data(), dtype, cols, row_at(y, dtype, ld_y, i));
    }
  }
  return ok();
}

int plora_cpu_rmsnorm_backward(const void* x, int64_t ld_x, const void* w, const float* rstd, const void* dy,
                               int64_t ld_dy, void* dx, int64_t ld_dx, float* dw, int dtype, int64_t rows,
                               int64_t cols) {
  PLORA_TRY(check_rmsnorm_backward_args(x, ld_x, w, rstd, dy, ld_dy, dx, ld_dx, dtype, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  // dw first: dx may be dy and would overwrite it
  if (dw != nullptr) {
    const int64_t blocks = (cols + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t c0 = b * kColumnBlock, n = cols - c0 < kColumnBlock ? cols - c0 : kColumnBlock;
      double acc[kColumnBlock] = {};
      float xs[kColumnBlock], gs[kColumnBlock];
      for (int64_t i = 0; i < rows; ++i) {
        const int size = dtype_size(dtype);
        row_to_f32(static_cast<const char*>(x) + (i * ld_x + c0) * size, dtype, n, xs);
        row_to_f32(static_cast<const char*>(dy) + (i * ld_dy + c0) * size, dtype, n, gs);
        for (int64_t j = 0; j < n; ++j) acc[j] += static_cast<double>(gs[j]) * (xs[j] * rstd[i]);
      }
      for (int64_t j = 0; j < n; ++j) dw[c0 + j] += static_cast<float>(acc[j]);
    }
  }
  const std::vector<float> weight = pack_f32(w, dtype, cols, 1, cols, cols, false);
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> xh(static_cast<size_t>(cols)), g(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      row_to_f32(static_cast<const char*>(x) + i * ld_x * dtype_size(dtype), dtype, cols, xh.data());
      row_to_f32(static_cast<const char*>(dy) + i * ld_dy * dtype_size(dtype), dtype, cols, g.data());
      const float r = rstd[i];
      for (int64_t j = 0; j < cols; ++j) {
        xh[j] *= r;
        g[j] *= weight[j];
      }
      const float mean = static_cast<float>(dot(g.data(), xh.data(), cols) / static_cast<double>(cols));
      for (int64_t j = 0; j < cols; ++j) g[j] = r * (g[j] - xh[j] * mean);
      f32_to_row(g.data(), dtype, cols, row_at(dx, dtype, ld_dx, i));
    }
  }
  return ok();
}

}  // extern "C"
