/* C ABI of libplora_cpu, the host kernels (C++17, OpenMP): the runtime (errors, threads, memory,
 * constants) declared here, and every kernel family through the headers included below. Each
 * family header declares its host and CUDA entry points with their contract; including this
 * umbrella is a convenience for C callers: a family's own code includes only its header.
 * Matrices are row-major with a leading dimension (elements between row starts). */
#ifndef PLORA_CPU_H
#define PLORA_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "plora/adamw_kernels.h"
#include "plora/attention.h"
#include "plora/cross_entropy.h"
#include "plora/decode_attention.h"
#include "plora/elementwise.h"
#include "plora/embedding.h"
#include "plora/gelu.h"
#include "plora/lapack.h"
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

/* Message of the last failed call on this thread ("" when the last call succeeded). */
PLORA_API const char* plora_cpu_last_error(void);

/* PLORA_OK when this CPU can run the kernels (they are compiled for PLORA_CPU_ARCH). */
PLORA_API int plora_cpu_supported(void);

/* Threads the OpenMP kernels use. */
PLORA_API int plora_cpu_num_threads(void);

/* Threads of the OpenBLAS already loaded in this process, or -1 when none is loaded. */
PLORA_API int plora_cpu_blas_threads(void);

/* 64-byte aligned host memory; NULL when the allocation fails. */
PLORA_API void* plora_cpu_alloc(int64_t bytes);
PLORA_API void plora_cpu_free(void* ptr);

/* The value of a constant of this ABI by its C name (e.g. "PLORA_BF16", "PLORA_ROUND_STOCHASTIC"),
 * or -1 for a name it does not know: the Java side checks its codes against these at load. */
PLORA_API int64_t plora_cpu_constant(const char* name);

#ifdef __cplusplus
}
#endif

#endif
