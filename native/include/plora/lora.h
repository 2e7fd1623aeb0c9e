/* Kernel family lora: the LoRA path: shrink (forward), dropout mask, dY pass and dA/dX update
 * (backward). Contract beside each declaration; status codes, dtypes and the matrix layout in
 * plora/plora.h. A CUDA entry point takes device pointers and a stream (a cudaStream_t as
 * void*) and keeps the contract of the host function of the same name unless its comment says
 * otherwise. */
#ifndef PLORA_LORA_H
#define PLORA_LORA_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* LoRA shrink: out[m,j] = scaling * sum_k xt[m,k] * a[j,k] with xt = x * mask / (1-p), for
 * x [m,k], a [r,k], out [m,r]; all of one dtype, fp32 accumulation. */
PLORA_API int plora_cpu_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a,
                               void* out, int64_t ld_out, int dtype, int64_t m, int64_t k,
                               int64_t r, float scaling, float p, uint64_t seed,
                               uint64_t stream);
PLORA_API int plora_cuda_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a,
                                void* out, int64_t ld_out, int dtype, int64_t m, int64_t k,
                                int64_t r, float scaling, float p, uint64_t seed,
                                uint64_t stream_id, void* stream);

/* Writes the dropout multiplier of each element of a rows x cols activation: 1/(1-p) where
 * the element is kept and 0 where it is dropped, from Philox stream (seed, stream). */
PLORA_API int plora_cpu_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows,
                                     int64_t cols, float p, uint64_t seed, uint64_t stream);
PLORA_API int plora_cuda_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows,
                                      int64_t cols, float p, uint64_t seed, uint64_t stream_id,
                                      void* stream);

/* dY pass of the LoRA backward, one pass over dy [m,n]:
 *   ds[i,j] = scaling * sum_t dy[i,t] * b[t,j]     ds [m,r], stored in dtype
 *   db[t,j] += sum_i dy[i,t] * ss[i,j]             db [n,r], fp32, accumulated
 * with b [n,r] and ss [m,r] = scaling * S saved by the forward pass; dy, b, ss, ds of one dtype. */
PLORA_API int plora_cpu_dy_pass(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b,
                                const void* ss, int64_t ld_ss, void* ds, int64_t ld_ds, float* db,
                                int64_t ld_db, int dtype, int64_t m, int64_t n, int64_t r,
                                float scaling);
PLORA_API int plora_cuda_dy_pass(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b,
                                 const void* ss, int64_t ld_ss, void* ds, int64_t ld_ds, float* db,
                                 int64_t ld_db, int dtype, int64_t m, int64_t n, int64_t r,
                                 float scaling, void* stream);

/* dA / dX update of the LoRA backward, one pass over x [m,k]:
 *   da[j,t] += sum_i ds[i,j] * xt[i,t]                          da [r,k], fp32, accumulated
 *   dx[i,t] += mask[i,t]/(1-p) * sum_j ds[i,j] * a[j,t]         only when dx != NULL
 * with xt = x * mask / (1-p), the mask of (seed, stream) as in plora_cpu_shrink; x, ds [m,r],
 * a [r,k] and dx of one dtype. */
PLORA_API int plora_cpu_da_dx(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds,
                              const void* a, int64_t ld_a, float* da, int64_t ld_da, void* dx,
                              int64_t ld_dx, int dtype, int64_t m, int64_t k, int64_t r, float p,
                              uint64_t seed, uint64_t stream);
PLORA_API int plora_cuda_da_dx(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds,
                               const void* a, int64_t ld_a, float* da, int64_t ld_da, void* dx,
                               int64_t ld_dx, int dtype, int64_t m, int64_t k, int64_t r, float p,
                               uint64_t seed, uint64_t stream_id, void* stream);

#ifdef __cplusplus
}
#endif

#endif
