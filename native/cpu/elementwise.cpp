// Kernel family elementwise on the host: copy, fill, axpby, bias add.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/elementwise.h"
#include "rows.h"

using namespace plora;

extern "C" {

int plora_cpu_copy(const void* src, int src_dtype, int64_t ld_src, void* dst, int dst_dtype,
                   int64_t ld_dst, int64_t rows, int64_t cols) {
  PLORA_TRY(check_copy_args(src, src_dtype, ld_src, dst, dst_dtype, ld_dst, rows, cols));
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  const int64_t ss = dtype_size(src_dtype), ds = dtype_size(dst_dtype);
  if (src_dtype == dst_dtype) {
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(d + i * ld_dst * ds, s + i * ld_src * ss, static_cast<size_t>(cols * ss));
  } else {
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
    for (int64_t i = 0; i < rows; ++i) {
      const void* srow = s + i * ld_src * ss;
      void* drow = d + i * ld_dst * ds;
      if (src_dtype == PLORA_F32) f32_to_row(static_cast<const float*>(srow), dst_dtype, cols, drow);
      else if (dst_dtype == PLORA_F32) row_to_f32(srow, src_dtype, cols, static_cast<float*>(drow));
      else
        for (int64_t j = 0; j < cols; ++j) store_f32(drow, dst_dtype, j, load_f32(srow, src_dtype, j));
    }
  }
  return ok();
}

int plora_cpu_fill(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols, float value) {
  PLORA_TRY(check_fill_args(dst, dtype, ld, rows, cols, value));
  const int64_t size = dtype_size(dtype);
  char* d = static_cast<char*>(dst);
  // the value rounded to the dtype once; then every element gets the same bits
  const uint16_t half = dtype == PLORA_BF16 ? f32_to_bf16(value) : f32_to_f16(value);
  const int32_t integer = dtype == PLORA_I32 ? static_cast<int32_t>(value) : 0;  // in range: checked
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    char* row = d + i * ld * size;
    if (dtype == PLORA_F32) std::fill_n(reinterpret_cast<float*>(row), cols, value);
    else if (dtype == PLORA_I32) std::fill_n(reinterpret_cast<int32_t*>(row), cols, integer);
    else std::fill_n(reinterpret_cast<uint16_t*>(row), cols, half);
  }
  return ok();
}

int plora_cpu_axpby(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta, void* y,
                    int y_dtype, int64_t ld_y, int64_t rows, int64_t cols) {
  PLORA_TRY(check_axpby_args(x, x_dtype, ld_x, y, y_dtype, ld_y, rows, cols));
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const char* xr = row_at(x, x_dtype, ld_x, i);
    char* yr = row_at(y, y_dtype, ld_y, i);
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
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> buffer(static_cast<size_t>(dtype == PLORA_F32 ? 0 : cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      char* yr = row_at(y, dtype, ld, i);
      float* v = dtype == PLORA_F32 ? reinterpret_cast<float*>(yr) : buffer.data();
      if (dtype != PLORA_F32) row_to_f32(yr, dtype, cols, v);
      for (int64_t j = 0; j < cols; ++j) v[j] += b[j];
      if (dtype != PLORA_F32) f32_to_row(v, dtype, cols, yr);
    }
  }
  return ok();
}

}  // extern "C"
