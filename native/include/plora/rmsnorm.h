/* Kernel family rmsnorm: RMSNorm as Hugging Face computes it, forward and backward. Contract beside each declaration;
 * status codes, dtypes and the matrix layout in plora/plora.h, the token layout (tokens as rows,
 * heads as column blocks, I32 ids and positions) in docs/design.md. A CUDA entry point takes device
 * pointers and a stream (a cudaStream_t as void*) and keeps the contract of the host function
 * of the same name unless its comment says otherwise. */
#ifndef PLORA_RMSNORM_H
#define PLORA_RMSNORM_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per row i of x [rows, cols]: rstd_i = 1 / sqrt(mean_j x_ij^2 + eps), in fp32 from a double sum;
 * y_ij = round(w_j * round(x_ij * rstd_i)), where round stores to the dtype (Hugging Face's
 * LlamaRMSNorm normalises in fp32, casts to the model dtype, then multiplies by the weight; for F32
 * both roundings are exact). x, w ([1, cols]) and y of one dtype; y may be x. rstd: rows floats,
 * written when not NULL (backward needs them). eps > 0. */
PLORA_API int plora_cpu_rmsnorm(const void* x, int64_t ld_x, const void* w, void* y, int64_t ld_y,
                                float* rstd, int dtype, int64_t rows, int64_t cols, float eps);
PLORA_API int plora_cuda_rmsnorm(const void* x, int64_t ld_x, const void* w, void* y, int64_t ld_y,
                                 float* rstd, int dtype, int64_t rows, int64_t cols, float eps,
                                 void* stream);

/* With xh = x * rstd (rstd from the forward pass) and g = dy * w:
 *   dx_i = rstd_i * (g_i - xh_i * mean_j(g_ij * xh_ij))      (assigned; dx may be dy, not x)
 *   dw_j += sum_i dy_ij * xh_ij                               (fp32 [cols]; NULL: a frozen weight)
 * The sums over rows are taken in row order, so dw is the same whatever the thread count. */
PLORA_API int plora_cpu_rmsnorm_backward(const void* x, int64_t ld_x, const void* w,
                                         const float* rstd, const void* dy, int64_t ld_dy,
                                         void* dx, int64_t ld_dx, float* dw, int dtype,
                                         int64_t rows, int64_t cols);
PLORA_API int plora_cuda_rmsnorm_backward(const void* x, int64_t ld_x, const void* w,
                                          const float* rstd, const void* dy, int64_t ld_dy,
                                          void* dx, int64_t ld_dx, float* dw, int dtype,
                                          int64_t rows, int64_t cols, void* stream);

#ifdef __cplusplus
}
#endif

#endif
