/* Kernel family swiglu: the SwiGLU gate of Llama-family MLPs, forward and backward. Contract beside each declaration;
 * status codes, dtypes and the matrix layout in plora/plora.h, the token layout (tokens as rows,
 * heads as column blocks, I32 ids and positions) in docs/design.md. A CUDA entry point takes device
 * pointers and a stream (a cudaStream_t as void*) and keeps the contract of the host function
 * of the same name unless its comment says otherwise. */
#ifndef PLORA_SWIGLU_H
#define PLORA_SWIGLU_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* h = round(round(silu(gate)) * up), silu(g) = g * sigmoid(g), round storing to the dtype (Hugging
 * Face computes act_fn(gate_proj(x)) * up_proj(x) in the model dtype). gate, up, h [rows, cols] of
 * one dtype; h may be gate or up. */
PLORA_API int plora_cpu_swiglu(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up,
                               void* h, int64_t ld_h, int dtype, int64_t rows, int64_t cols);
PLORA_API int plora_cuda_swiglu(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up,
                                void* h, int64_t ld_h, int dtype, int64_t rows, int64_t cols,
                                void* stream);

/* dgate = dh * up * silu'(gate), silu'(g) = s(g) * (1 + g * (1 - s(g))), s the sigmoid;
 * dup = dh * silu(gate). Both assigned; dgate may be gate and dup may be up (each element is read
 * before it is written); neither may be dh. */
PLORA_API int plora_cpu_swiglu_backward(const void* gate, int64_t ld_gate, const void* up,
                                        int64_t ld_up, const void* dh, int64_t ld_dh, void* dgate,
                                        int64_t ld_dgate, void* dup, int64_t ld_dup, int dtype,
                                        int64_t rows, int64_t cols);
PLORA_API int plora_cuda_swiglu_backward(const void* gate, int64_t ld_gate, const void* up,
                                         int64_t ld_up, const void* dh, int64_t ld_dh,
                                         void* dgate, int64_t ld_dgate, void* dup,
                                         int64_t ld_dup, int dtype, int64_t rows, int64_t cols,
                                         void* stream);

#ifdef __cplusplus
}
#endif

#endif
