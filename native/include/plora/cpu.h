/* C ABI of libplora_cpu: memory, copies and kernels on the host (C++17, OpenMP).
 * Matrices are row-major with a leading dimension (elements between row starts). */
#ifndef PLORA_CPU_H
#define PLORA_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message of the last failed call on this thread ("" when the last call succeeded). */
PLORA_API const char* plora_cpu_last_error(void);

/* Threads the OpenMP kernels use. */
PLORA_API int plora_cpu_num_threads(void);

/* Threads of the OpenBLAS already loaded in this process, or -1 when none is loaded. */
PLORA_API int plora_cpu_blas_threads(void);

/* 64-byte aligned host memory; NULL when the allocation fails. */
PLORA_API void* plora_cpu_alloc(int64_t bytes);
PLORA_API void plora_cpu_free(void* ptr);

/* dst[i,j] = src[i,j] for a rows x cols matrix, converting between dtypes (round to nearest). */
PLORA_API int plora_cpu_copy(const void* src, int src_dtype, int64_t ld_src, void* dst,
                             int dst_dtype, int64_t ld_dst, int64_t rows, int64_t cols);

/* dst[i,j] = value (rounded to the dtype). */
PLORA_API int plora_cpu_fill(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols,
                             float value);

/* Writes the dropout multiplier of each element of a rows x cols activation: 1/(1-p) where
 * the element is kept and 0 where it is dropped, from Philox stream (seed, stream). */
PLORA_API int plora_cpu_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows,
                                     int64_t cols, float p, uint64_t seed, uint64_t stream);

/* LoRA shrink: out[m,j] = scaling * sum_k xt[m,k] * a[j,k] with xt = x * mask / (1-p), for
 * x [m,k], a [r,k], out [m,r]; all of one dtype, fp32 accumulation. */
PLORA_API int plora_cpu_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a,
                               void* out, int64_t ld_out, int dtype, int64_t m, int64_t k,
                               int64_t r, float scaling, float p, uint64_t seed,
                               uint64_t stream);

#ifdef __cplusplus
}
#endif

#endif
