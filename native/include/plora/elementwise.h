/* Kernel family elementwise: copies, fills and elementwise arithmetic: copy, fill, axpby,
 * add_bias. Contract beside each declaration; status codes, dtypes and the matrix layout in
 * plora/plora.h. A CUDA entry point takes device pointers and a stream (a cudaStream_t as
 * void*) and keeps the contract of the host function of the same name unless its comment says
 * otherwise. */
#ifndef PLORA_ELEMENTWISE_H
#define PLORA_ELEMENTWISE_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dst[i,j] = src[i,j] for a rows x cols matrix, converting between the float dtypes (round to
 * nearest); I32 copies only to I32 (PLORA_ERR_INVALID otherwise). */
PLORA_API int plora_cpu_copy(const void* src, int src_dtype, int64_t ld_src, void* dst,
                             int dst_dtype, int64_t ld_dst, int64_t rows, int64_t cols);
/* Same contracts as the plora_cpu_* functions of the same name. */
PLORA_API int plora_cuda_copy(const void* src, int src_dtype, int64_t ld_src, void* dst,
                              int dst_dtype, int64_t ld_dst, int64_t rows, int64_t cols,
                              void* stream);

/* dst[i,j] = value (rounded to the dtype); for I32 the value must be an integer in int32 range. */
PLORA_API int plora_cpu_fill(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols,
                             float value);
PLORA_API int plora_cuda_fill(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols,
                              float value, void* stream);

/* y = alpha * x + beta * y elementwise over rows x cols (y is not read when beta == 0). */
PLORA_API int plora_cpu_axpby(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta,
                              void* y, int y_dtype, int64_t ld_y, int64_t rows, int64_t cols);
PLORA_API int plora_cuda_axpby(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta,
                               void* y, int y_dtype, int64_t ld_y, int64_t rows, int64_t cols,
                               void* stream);

/* y[i,j] += bias[j] for a rows x cols y; bias holds cols contiguous values. */
PLORA_API int plora_cpu_add_bias(void* y, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                 const void* bias, int bias_dtype);
PLORA_API int plora_cuda_add_bias(void* y, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                  const void* bias, int bias_dtype, void* stream);

#ifdef __cplusplus
}
#endif

#endif
