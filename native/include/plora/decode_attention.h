/* Kernel family decode_attention: the attention of a few new tokens to a key/value cache, for
 * generation (one token at a time, or a prompt's tokens at once). Status codes, dtypes and the
 * matrix layout in plora/plora.h; the heads as in plora/attention.h.
 *
 * Layout (tokens as rows, heads as column blocks): q [queries, heads*head_dim] holds the new
 * tokens' queries (after RoPE); k_cache and v_cache [past + queries, kv_heads*head_dim] (rows of a
 * larger cache: only these are read) hold the keys and values of the past positions and then of
 * the new tokens themselves, which the caller writes first. New token i attends to cache rows
 * 0 .. past + i: the cache is one document, causal within the new tokens. Query head h reads kv
 * head h / (heads / kv_heads). Online softmax, arithmetic in fp32; q, the caches and out share one
 * float storage dtype. Nothing is kept for a backward pass: this family is for inference. */
#ifndef PLORA_DECODE_ATTENTION_H
#define PLORA_DECODE_ATTENTION_H

#include <stdint.h>

#include "plora/attention.h"
#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[i, h] = Σ_s softmax_s(scale·q_i,h·k_s,g) v_s,g over s in [0, past + i], g the kv head of h;
 * head_dim at most PLORA_ATTENTION_MAX_HEAD_DIM. out must not overlap q or the caches. */
PLORA_API int plora_cpu_decode_attention(const void* q, int64_t ld_q, const void* k_cache, int64_t ld_k,
                                         const void* v_cache, int64_t ld_v, int dtype, int64_t queries,
                                         int64_t past, int heads, int kv_heads, int head_dim, float scale,
                                         void* out, int64_t ld_out);
/* Device pointers; asynchronous on the stream. */
PLORA_API int plora_cuda_decode_attention(const void* q, int64_t ld_q, const void* k_cache, int64_t ld_k,
                                          const void* v_cache, int64_t ld_v, int dtype, int64_t queries,
                                          int64_t past, int heads, int kv_heads, int head_dim, float scale,
                                          void* out, int64_t ld_out, void* stream);

#ifdef __cplusplus
}
#endif

#endif
