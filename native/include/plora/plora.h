/* Common C ABI of the plora kernel libraries: status codes, dtypes, export macro.
 *
 * Every kernel takes raw pointers with explicit leading dimensions (in elements), a dtype and,
 * for CUDA, a stream passed as void* (a cudaStream_t), and returns a status code. The message of
 * the last failure on the calling thread is kept per library (plora_cpu_last_error,
 * plora_cuda_last_error). Kernel libraries never print and never exit. */
#ifndef PLORA_PLORA_H
#define PLORA_PLORA_H

#include <stdint.h>

#if defined(_WIN32)
#define PLORA_API __declspec(dllexport)
#else
#define PLORA_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum plora_status {
  PLORA_OK = 0,
  PLORA_ERR_INVALID = 1,      /* an argument the Java side should have rejected */
  PLORA_ERR_NO_MEMORY = 2,    /* an allocation failed */
  PLORA_ERR_CUDA = 3,         /* a CUDA runtime call or kernel launch failed */
  PLORA_ERR_NOT_COMPILED = 4  /* this library is the stub built without nvcc */
};

/* Distributions of the random fills. */
enum plora_distribution { PLORA_UNIFORM = 0, PLORA_NORMAL = 1 };

/* Rounding of a merge into 16-bit storage. */
enum plora_rounding { PLORA_ROUND_NEAREST = 0, PLORA_ROUND_STOCHASTIC = 1 };

/* Storage types. The float types are computed on in fp32; PLORA_I32 (token ids, labels) is only
 * copied to I32 and filled with integral values. Java checks its codes against these at load
 * (plora_cpu_constant), so a change here is caught, not mirrored. */
enum plora_dtype { PLORA_F32 = 0, PLORA_BF16 = 1, PLORA_F16 = 2, PLORA_I32 = 3 };

#ifdef __cplusplus
}
#endif

#endif
