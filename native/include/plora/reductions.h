/* Kernel family reductions: reductions that return a number to the host: sum of squares, non-
 * finite count. Contract beside each declaration; status codes, dtypes and the matrix layout in
 * plora/plora.h. A CUDA entry point takes device pointers and a stream (a cudaStream_t as
 * void*) and keeps the contract of the host function of the same name unless its comment says
 * otherwise. */
#ifndef PLORA_REDUCTIONS_H
#define PLORA_REDUCTIONS_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* *out = sum of x[i,j]^2 in double. */
PLORA_API int plora_cpu_sum_squares(const void* x, int dtype, int64_t ld, int64_t rows,
                                    int64_t cols, double* out);
PLORA_API int plora_cuda_sum_squares(const void* x, int dtype, int64_t ld, int64_t rows,
                                     int64_t cols, double* out, void* scratch, void* stream);

/* *out = the sum of squares of `count` tensors (tensor t: address x[t], dtypes[t], ld[t], rows[t],
 * cols[t]), summed tensor by tensor in order: a global gradient norm in one call. */
PLORA_API int plora_cpu_sum_squares_many(int count, const int64_t* x, const int* dtypes,
                                         const int64_t* ld, const int64_t* rows,
                                         const int64_t* cols, double* out);
/* The sum of squares of `count` tensors (as plora_cpu_sum_squares_many, but added on the device
 * by atomics, in no fixed order) with one wait for the stream, not one per tensor. */
PLORA_API int plora_cuda_sum_squares_many(int count, const int64_t* x, const int* dtypes,
                                          const int64_t* ld, const int64_t* rows,
                                          const int64_t* cols, double* out, void* scratch,
                                          void* stream);

/* *count = number of NaN or infinite elements of a rows x cols matrix. */
PLORA_API int plora_cpu_count_nonfinite(const void* x, int dtype, int64_t ld, int64_t rows,
                                        int64_t cols, int64_t* count);
/* Counts into device_counter (8 bytes of device memory the caller owns), waits for the stream,
 * and stores the count in *count on the host. */
PLORA_API int plora_cuda_count_nonfinite(const void* x, int dtype, int64_t ld, int64_t rows,
                                         int64_t cols, void* device_counter, int64_t* count,
                                         void* stream);

#ifdef __cplusplus
}
#endif

#endif
