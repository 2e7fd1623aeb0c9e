/* Kernel family gelu: GELU activation, forward and backward. Contract beside each declaration;
 * status codes, dtypes and the matrix layout in plora/plora.h. A CUDA entry point takes device
 * pointers and a stream (a cudaStream_t as void*) and keeps the contract of the host function
 * of the same name unless its comment says otherwise. */
#ifndef PLORA_GELU_H
#define PLORA_GELU_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GELU (exact, erf form): y = x * Phi(x). x and y of one dtype; y may be x. */
PLORA_API int plora_cpu_gelu(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype,
                             int64_t rows, int64_t cols);
PLORA_API int plora_cuda_gelu(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype,
                              int64_t rows, int64_t cols, void* stream);

/* dx = dy * (Phi(x) + x * phi(x)); dx may be dy. */
PLORA_API int plora_cpu_gelu_backward(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy,
                                      void* dx, int64_t ld_dx, int dtype, int64_t rows,
                                      int64_t cols);
PLORA_API int plora_cuda_gelu_backward(const void* x, int64_t ld_x, const void* dy,
                                       int64_t ld_dy, void* dx, int64_t ld_dx, int dtype,
                                       int64_t rows, int64_t cols, void* stream);

#ifdef __cplusplus
}
#endif

#endif
