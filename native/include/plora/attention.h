/* Kernel family attention: causal grouped-query attention over packed documents, forward and
 * backward, in the FlashAttention manner (tiles, online softmax, only the log-sum-exp kept; no
 * [T,T] matrix is ever stored). Status codes, dtypes and the matrix layout in plora/plora.h.
 *
 * Layout (tokens as rows, heads as column blocks): q [T, heads*head_dim], k and v
 * [T, kv_heads*head_dim], each with its own leading dimension (they may be column views of one
 * fused buffer); query head h reads kv head h / (heads / kv_heads) (Hugging Face's repeat_kv).
 * seq_start I32 [T] (contiguous): seq_start[t] is the row of the first token of t's document,
 * so seq_start[0] = 0 and, for t > 0, seq_start[t] is seq_start[t-1] (same document) or t (a new
 * one). Token t attends to rows seq_start[t] .. t. lse is fp32 [T, heads] with leading dimension
 * ld_lse: lse[t, h] = log Σ_s exp(scale·q_t·k_s) over the keys t sees. Arithmetic in fp32; q, k,
 * v, out, dout, dq, dk, dv share one float storage dtype.
 *
 * A seq_start that breaks the rule above is PLORA_ERR_INVALID with *bad_seq_start the number of
 * rows that break it; nothing is written then. */
#ifndef PLORA_ATTENTION_H
#define PLORA_ATTENTION_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest head_dim the kernels take. */
#define PLORA_ATTENTION_MAX_HEAD_DIM 256

/* out[t, h] = Σ_s softmax_s(scale·q_t,h·k_s,g) v_s,g over s in [seq_start[t], t], g the kv head
 * of h; lse as above. out must not overlap q, k, v or lse. */
PLORA_API int plora_cpu_attention_forward(const void* q, int64_t ld_q, const void* k, int64_t ld_k,
                                          const void* v, int64_t ld_v, const int32_t* seq_start,
                                          int dtype, int64_t tokens, int heads, int kv_heads,
                                          int head_dim, float scale, void* out, int64_t ld_out,
                                          float* lse, int64_t ld_lse, int64_t* bad_seq_start);
/* Device pointers; scratch as for the losses (PLORA_CUDA_SCRATCH_BYTES); waits for the stream
 * to read the seq_start check back. */
PLORA_API int plora_cuda_attention_forward(const void* q, int64_t ld_q, const void* k, int64_t ld_k,
                                           const void* v, int64_t ld_v, const int32_t* seq_start,
                                           int dtype, int64_t tokens, int heads, int kv_heads,
                                           int head_dim, float scale, void* out, int64_t ld_out,
                                           float* lse, int64_t ld_lse, int64_t* bad_seq_start,
                                           void* scratch, void* stream);

/* Gradients of L(q, k, v) given dout = dL/dout, from the forward's out and lse (FlashAttention-2:
 * delta_t = Σ dout_t ⊙ out_t, then the probabilities recomputed tile by tile from lse). dq, dk
 * and dv are assigned; dk and dv of a kv head sum its query heads' contributions. Deterministic:
 * every output element is summed by one thread in a fixed order. dq, dk, dv must be disjoint from
 * each other and from the inputs. */
PLORA_API int plora_cpu_attention_backward(const void* q, int64_t ld_q, const void* k, int64_t ld_k,
                                           const void* v, int64_t ld_v, const void* out,
                                           int64_t ld_out, const void* dout, int64_t ld_dout,
                                           const float* lse, int64_t ld_lse,
                                           const int32_t* seq_start, int dtype, int64_t tokens,
                                           int heads, int kv_heads, int head_dim, float scale,
                                           void* dq, int64_t ld_dq, void* dk, int64_t ld_dk,
                                           void* dv, int64_t ld_dv, int64_t* bad_seq_start);
PLORA_API int plora_cuda_attention_backward(const void* q, int64_t ld_q, const void* k, int64_t ld_k,
                                            const void* v, int64_t ld_v, const void* out,
                                            int64_t ld_out, const void* dout, int64_t ld_dout,
                                            const float* lse, int64_t ld_lse,
                                            const int32_t* seq_start, int dtype, int64_t tokens,
                                            int heads, int kv_heads, int head_dim, float scale,
                                            void* dq, int64_t ld_dq, void* dk, int64_t ld_dk,
                                            void* dv, int64_t ld_dv, int64_t* bad_seq_start,
                                            void* scratch, void* stream);

#ifdef __cplusplus
}
#endif

#endif
