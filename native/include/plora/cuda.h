/* C ABI of libplora_cuda, the CUDA kernels: the runtime declared here, and every kernel family
 * through the headers included below (each declares its host and CUDA entry points). Pointers
 * are device pointers; `stream` is a cudaStream_t passed as void* so that callers need no CUDA
 * headers. Launches are asynchronous on the stream; a launch error is reported as
 * PLORA_ERR_CUDA with the runtime's message. Without nvcc this library is a stub whose kernel
 * calls return PLORA_ERR_NOT_COMPILED. */
#ifndef PLORA_CUDA_H
#define PLORA_CUDA_H

#include <stdint.h>

#include "plora/adamw_kernels.h"
#include "plora/attention.h"
#include "plora/cross_entropy.h"
#include "plora/decode_attention.h"
#include "plora/elementwise.h"
#include "plora/embedding.h"
#include "plora/gelu.h"
#include "plora/lora.h"
#include "plora/losses.h"
#include "plora/merge.h"
#include "plora/plora.h"
#include "plora/random_fill.h"
#include "plora/reductions.h"
#include "plora/rmsnorm.h"
#include "plora/rope.h"
#include "plora/swiglu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the kernels were compiled with nvcc, 0 for the stub. */
PLORA_API int plora_cuda_compiled(void);

/* The SM architectures the kernels were compiled for, e.g. "80,90" ("" for the stub). */
PLORA_API const char* plora_cuda_architectures(void);

PLORA_API const char* plora_cuda_last_error(void);

/* plora_cpu_constant of this library; it also knows "PLORA_CUDA_SCRATCH_BYTES". */
PLORA_API int64_t plora_cuda_constant(const char* name);

/* The CUDA functions that return a number to the host (sum of squares, mse, cross-entropy) use
 * `scratch`: at least PLORA_CUDA_SCRATCH_BYTES of device memory owned by the caller; they wait
 * for the stream before returning. */
#define PLORA_CUDA_SCRATCH_BYTES 256

#ifdef __cplusplus
}
#endif

#endif
