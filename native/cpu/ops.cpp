// Elementwise host ops: axpby, bias add, random fills, non-finite count.
#include <omp.h>

#include <cmath>
#include <vector>

#include "../common/contracts.h"
#include "plora/cpu.h"
#include "plora/philox.h"
#include "rows.h"

using namespace plora;

namespace {

inline char* row_of(void* base, int dtype, int64_t ld, int64_t i) {
  return static_cast<char*>(base) + i * ld * dtype_size(dtype);
}

inline const char* row_of(const void* base, int dtype, int64_t ld, int64_t i) {
  return static_cast<const char*>(base) + i * ld * dtype_size(dtype);
}

constexpr int64_t kParallelElements = 1 << 15;

}  // namespace

extern "C" {

int plora_cpu_axpby(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta, void* y,
                    int y_dtype, int64_t ld_y, int64_t rows, int64_t cols) {
  PLORA_TRY(check_axpby_args(x, x_dtype, ld_x, y, y_dtype, ld_y, rows, cols));
#pragma omp parallel for schedule(static) if (rows * cols > kParallelElements)
  for (int64_t i = 0; i < rows; ++i) {
    const char* xr = row_of(x, x_dtype, ld_x, i);
    char* yr = row_of(y, y_dtype, ld_y, i);
    if (x_dtype == PLORA_F32 && y_dtype == PLORA_F32) {
      const float* xf = reinterpret_cast<const float*>(xr);
      float* yf = reinterpret_cast<float*>(yr);
      if (beta == 0.0f) {
        for (int64_t j = 0; j < cols; ++j) yf[j] = alpha * xf[j];
      } else {
        for (int64_t j = 0; j < cols; ++j) yf[j] = alpha * xf[j] + beta * yf[j];
      }
    } else {
      for (int64_t j = 0; j < cols; ++j) {
        float v = alpha * load_f32(xr, x_dtype, j);
        if (beta != 0.0f) v += beta * load_f32(yr, y_dtype, j);
        store_f32(yr, y_dtype, j, v);
      }
    }
  }
  return ok();
}

int plora_cpu_add_bias(void* y, int dtype, int64_t ld, int64_t rows, int64_t cols, const void* bias,
                       int bias_dtype) {
  PLORA_TRY(check_add_bias_args(y, dtype, ld, rows, cols, bias, bias_dtype));
  std::vector<float> b(static_cast<size_t>(cols));  // the bias as fp32, converted once
  row_to_f32(bias, bias_dtype, cols, b.data());
#pragma omp parallel if (rows * cols > kParallelElements)
  {
    std::vector<float> buffer(static_cast<size_t>(dtype == PLORA_F32 ? 0 : cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      char* yr = row_of(y, dtype, ld, i);
      float* v = dtype == PLORA_F32 ? reinterpret_cast<float*>(yr) : buffer.data();
      if (dtype != PLORA_F32) row_to_f32(yr, dtype, cols, v);
      for (int64_t j = 0; j < cols; ++j) v[j] += b[j];
      if (dtype != PLORA_F32) f32_to_row(v, dtype, cols, yr);
    }
  }
  return ok();
}

int plora_cpu_random_fill(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                          int distribution, float a, float b, uint64_t seed, uint64_t stream) {
  PLORA_TRY(check_matrix_args("out", out, dtype, ld, rows, cols));
  PLORA_TRY(check_distribution(distribution));
#pragma omp parallel for schedule(static) if (rows * cols > kParallelElements)
  for (int64_t i = 0; i < rows; ++i) {
    char* row = row_of(out, dtype, ld, i);
    for (int64_t j = 0; j < cols; ++j) {
      const uint64_t e = static_cast<uint64_t>(i * cols + j);
      float v = distribution == PLORA_UNIFORM ? a + (b - a) * philox_uniform(seed, stream, e)
                                              : a + b * philox_normal(seed, stream, e);
      store_f32(row, dtype, j, v);
    }
  }
  return ok();
}

int plora_cpu_count_nonfinite(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols,
                              int64_t* count) {
  PLORA_TRY(check_matrix_args("x", x, dtype, ld, rows, cols));
  PLORA_TRY(check_out_pointer("count", count));
  int64_t total = 0;
#pragma omp parallel reduction(+ : total) if (rows * cols > kParallelElements)
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
