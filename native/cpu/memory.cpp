// Host memory, copies and fills of libplora_cpu.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "../common/contracts.h"
#include "plora/cpu.h"
#include "rows.h"

using namespace plora;

extern "C" {

void* plora_cpu_alloc(int64_t bytes) {
  if (bytes <= 0) {
    fail(PLORA_ERR_INVALID, "allocation of %lld bytes", (long long)bytes);
    return nullptr;
  }
  // aligned_alloc needs a size that is a multiple of the alignment.
  const int64_t alignment = 64;
  int64_t rounded = (bytes + alignment - 1) / alignment * alignment;
  void* ptr = std::aligned_alloc(alignment, static_cast<size_t>(rounded));
  if (ptr == nullptr) fail(PLORA_ERR_NO_MEMORY, "out of host memory allocating %lld bytes", (long long)bytes);
  return ptr;
}

void plora_cpu_free(void* ptr) { std::free(ptr); }

int plora_cpu_copy(const void* src, int src_dtype, int64_t ld_src, void* dst, int dst_dtype,
                   int64_t ld_dst, int64_t rows, int64_t cols) {
  PLORA_TRY(check_copy_args(src, src_dtype, ld_src, dst, dst_dtype, ld_dst, rows, cols));
  const char* s = static_cast<const char*>(src);
  char* d = static_cast<char*>(dst);
  const int64_t ss = dtype_size(src_dtype), ds = dtype_size(dst_dtype);
  if (src_dtype == dst_dtype) {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(d + i * ld_dst * ds, s + i * ld_src * ss, static_cast<size_t>(cols * ss));
  } else {
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
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
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t i = 0; i < rows; ++i) {
    char* row = d + i * ld * size;
    if (dtype == PLORA_F32) std::fill_n(reinterpret_cast<float*>(row), cols, value);
    else if (dtype == PLORA_I32) std::fill_n(reinterpret_cast<int32_t*>(row), cols, integer);
    else std::fill_n(reinterpret_cast<uint16_t*>(row), cols, half);
  }
  return ok();
}

}  // extern "C"
