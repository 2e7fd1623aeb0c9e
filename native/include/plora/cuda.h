/* C ABI of libplora_cuda: the CUDA kernels. Pointers are device pointers; `stream` is a
 * cudaStream_t passed as void* so that callers need no CUDA headers. Launches are asynchronous
 * on the stream; a launch error is reported as PLORA_ERR_CUDA with the runtime's message.
 * Without nvcc this library is a stub whose calls return PLORA_ERR_NOT_COMPILED. */
#ifndef PLORA_CUDA_H
#define PLORA_CUDA_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the kernels were compiled with nvcc, 0 for the stub. */
PLORA_API int plora_cuda_compiled(void);

/* The SM architectures the kernels were compiled for, e.g. "80,90" ("" for the stub). */
PLORA_API const char* plora_cuda_architectures(void);

PLORA_API const char* plora_cuda_last_error(void);

/* Same contracts as the plora_cpu_* functions of the same name. */
PLORA_API int plora_cuda_copy(const void* src, int src_dtype, int64_t ld_src, void* dst,
                              int dst_dtype, int64_t ld_dst, int64_t rows, int64_t cols,
                              void* stream);

PLORA_API int plora_cuda_fill(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols,
                              float value, void* stream);

PLORA_API int plora_cuda_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows,
                                      int64_t cols, float p, uint64_t seed, uint64_t stream_id,
                                      void* stream);

PLORA_API int plora_cuda_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a,
                                void* out, int64_t ld_out, int dtype, int64_t m, int64_t k,
                                int64_t r, float scaling, float p, uint64_t seed,
                                uint64_t stream_id, void* stream);

#ifdef __cplusplus
}
#endif

#endif
