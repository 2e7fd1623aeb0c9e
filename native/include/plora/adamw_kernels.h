/* Kernel family adamw_kernels: the fused AdamW step over many tensors. Contract beside each
 * declaration; status codes, dtypes and the matrix layout in plora/plora.h. A CUDA entry point
 * takes device pointers and a stream (a cudaStream_t as void*) and keeps the contract of the
 * host function of the same name unless its comment says otherwise. */
#ifndef PLORA_ADAMW_KERNELS_H
#define PLORA_ADAMW_KERNELS_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fused AdamW over `count` fp32 tensors, PyTorch's update (decoupled weight decay, bias
 * correction bc1 = 1 - beta1^t, bc2 = 1 - beta2^t computed by the caller):
 *   g = grad * grad_scale;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p = p (1 - lr_i wd) - (lr_i / bc1) m / (sqrt(v / bc2) + eps),   lr_i = lr * lr_scale[i]
 * params[i], grads[i], m[i], v[i] are addresses of rows[i] x cols[i] contiguous fp32 matrices.
 * When copies[i] != 0 the new p is also written, rounded to copy_dtype, to the rows[i] x cols[i]
 * matrix at copies[i] with leading dimension copy_ld[i] (a compute-dtype copy). */
PLORA_API int plora_cpu_adamw(int count, const int64_t* params, const int64_t* grads,
                              const int64_t* m, const int64_t* v, const int64_t* copies,
                              const int64_t* copy_ld, const int64_t* rows, const int64_t* cols,
                              const float* lr_scale, int copy_dtype, float lr, float beta1,
                              float beta2, float eps, float weight_decay, float grad_scale,
                              float bias_correction1, float bias_correction2);
/* The host arrays are read before the call returns; `table` is device memory of at least
 * 9 * 8 * count bytes (table_bytes) that receives them. */
PLORA_API int plora_cuda_adamw(int count, const int64_t* params, const int64_t* grads,
                               const int64_t* m, const int64_t* v, const int64_t* copies,
                               const int64_t* copy_ld, const int64_t* rows, const int64_t* cols,
                               const float* lr_scale, int copy_dtype, float lr, float beta1,
                               float beta2, float eps, float weight_decay, float grad_scale,
                               float bias_correction1, float bias_correction2, void* table,
                               int64_t table_bytes, void* stream);

#ifdef __cplusplus
}
#endif

#endif
