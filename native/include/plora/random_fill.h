/* Kernel family random_fill: random fills from the counter-based Philox stream. Contract beside
 * each declaration; status codes, dtypes and the matrix layout in plora/plora.h. A CUDA entry
 * point takes device pointers and a stream (a cudaStream_t as void*) and keeps the contract of
 * the host function of the same name unless its comment says otherwise. */
#ifndef PLORA_RANDOM_FILL_H
#define PLORA_RANDOM_FILL_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Random fill from Philox stream (seed, stream), element i = row * cols + col:
 * PLORA_UNIFORM: a + (b - a) * u with u in [0,1); PLORA_NORMAL: mean a, standard deviation b. */
PLORA_API int plora_cpu_random_fill(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                    int distribution, float a, float b, uint64_t seed,
                                    uint64_t stream);
PLORA_API int plora_cuda_random_fill(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                     int distribution, float a, float b, uint64_t seed,
                                     uint64_t stream_id, void* stream);

#ifdef __cplusplus
}
#endif

#endif
