/* Kernel family merge: merge of a LoRA product into the base weight (PLoRA unloading, LoRA
 * merge). Contract beside each declaration; status codes, dtypes and the matrix layout in
 * plora/plora.h. A CUDA entry point takes device pointers and a stream (a cudaStream_t as
 * void*) and keeps the contract of the host function of the same name unless its comment says
 * otherwise. */
#ifndef PLORA_MERGE_H
#define PLORA_MERGE_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Merge (PLoRA unloading, LoRA merge), in place:
 *   w[i,t] += c * sum_j b[i,j] * a[j,t]        fp32 accumulation
 * w [n,k] in w_dtype; BF16 w is rounded to nearest or stochastically (PLORA_ROUND_STOCHASTIC:
 * Philox (seed, stream), element i*k + t; F16 only rounds to nearest). a [r,k], b [n,r] in
 * ab_dtype. Then, in the same call, a *= scale_a and b *= scale_b (skipped when 1). */
PLORA_API int plora_cpu_merge(void* w, int w_dtype, int64_t ld_w, void* b, int64_t ld_b, void* a,
                              int64_t ld_a, int ab_dtype, int64_t n, int64_t k, int64_t r, float c,
                              int rounding, uint64_t seed, uint64_t stream, float scale_a,
                              float scale_b);
PLORA_API int plora_cuda_merge(void* w, int w_dtype, int64_t ld_w, void* b, int64_t ld_b, void* a,
                               int64_t ld_a, int ab_dtype, int64_t n, int64_t k, int64_t r,
                               float c, int rounding, uint64_t seed, uint64_t stream_id,
                               float scale_a, float scale_b, void* stream);

#ifdef __cplusplus
}
#endif

#endif
