/* Kernel family rope: rotary position embedding (Hugging Face's rotate_half form) in place, forward and backward. Contract beside each declaration;
 * status codes, dtypes and the matrix layout in plora/plora.h, the token layout (tokens as rows,
 * heads as column blocks, I32 ids and positions) in docs/design.md. A CUDA entry point takes device
 * pointers and a stream (a cudaStream_t as void*) and keeps the contract of the host function
 * of the same name unless its comment says otherwise. */
#ifndef PLORA_ROPE_H
#define PLORA_ROPE_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* In place on x [rows, heads * head_dim] (head h at columns h*head_dim ..), head_dim even,
 * half = head_dim / 2: for row t, pair j < half, angle = fp32(positions[t] * inv_freq[j]),
 * c = round(cos angle), s = round(sin angle) (cos and sin correctly rounded to fp32 first), and
 * with x1 = x[j], x2 = x[j + half] of each head:
 *   x[j] = round(round(x1 * c) + round(-x2 * s)),  x[j + half] = round(round(x2 * c) + round(x1 * s))
 * where round stores to the dtype: Hugging Face's q * cos + rotate_half(q) * sin in the model dtype.
 * positions: I32, element t at positions[t * ld_pos] (any value: a negative one rotates the other
 * way, as Hugging Face's would); inv_freq: half fp32 values. */
PLORA_API int plora_cpu_rope(void* x, int64_t ld_x, int dtype, int64_t rows, int64_t heads,
                             int64_t head_dim, const int32_t* positions, int64_t ld_pos,
                             const float* inv_freq);
PLORA_API int plora_cuda_rope(void* x, int64_t ld_x, int dtype, int64_t rows, int64_t heads,
                              int64_t head_dim, const int32_t* positions, int64_t ld_pos,
                              const float* inv_freq, void* stream);

/* The gradient through the rotation, in place on dx (dy on entry), in fp32 with one rounding:
 *   dx[j] = round(dy1 * c + dy2 * s),  dx[j + half] = round(dy2 * c - dy1 * s)
 * with c and s as in the forward pass. */
PLORA_API int plora_cpu_rope_backward(void* dx, int64_t ld_dx, int dtype, int64_t rows,
                                      int64_t heads, int64_t head_dim, const int32_t* positions,
                                      int64_t ld_pos, const float* inv_freq);
PLORA_API int plora_cuda_rope_backward(void* dx, int64_t ld_dx, int dtype, int64_t rows,
                                       int64_t heads, int64_t head_dim,
                                       const int32_t* positions, int64_t ld_pos,
                                       const float* inv_freq, void* stream);

#ifdef __cplusplus
}
#endif

#endif
