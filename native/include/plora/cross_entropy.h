/* Kernel family cross_entropy: the token-level cross-entropy of a language model's logits, over
 * one chunk of tokens at a time, with Hugging Face's ignore index. Contract beside each
 * declaration; status codes, dtypes and the matrix layout in plora/plora.h. A CUDA entry point
 * takes device pointers and a stream (a cudaStream_t as void*) and keeps the contract of the host
 * function of the same name unless its comment says otherwise. */
#ifndef PLORA_CROSS_ENTROPY_H
#define PLORA_CROSS_ENTROPY_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* For each row i of logits [rows, vocab] whose target t_i = targets[i * ld_targets] (I32) is not
 * ignore_index: loss_i = logsumexp(logits_i) - logits_i[t_i], computed in fp32 with the sums of
 * exponentials in double. *loss_sum receives the sum of loss_i over those rows (in row order) and
 * *counted their number. When dlogits is not NULL it receives grad_scale * (softmax(logits_i) -
 * onehot(t_i)) on those rows and 0 on ignored rows; dlogits may be logits (the gradient then
 * replaces the logits). A target outside [0, vocab) that is not ignore_index is PLORA_ERR_INVALID
 * naming the first such row, *bad_targets counts them, and nothing is written. */
PLORA_API int plora_cpu_cross_entropy(const void* logits, int64_t ld_logits, int dtype, int64_t rows,
                                      int64_t vocab, const int32_t* targets, int64_t ld_targets,
                                      int32_t ignore_index, float grad_scale, double* loss_sum,
                                      int64_t* counted, void* dlogits, int64_t ld_dlogits,
                                      int64_t* bad_targets);
/* loss_sum, counted and bad_targets are host pointers; the call waits for the stream.
 * `scratch`: PLORA_CUDA_SCRATCH_BYTES of device memory. */
PLORA_API int plora_cuda_cross_entropy(const void* logits, int64_t ld_logits, int dtype,
                                       int64_t rows, int64_t vocab, const int32_t* targets,
                                       int64_t ld_targets, int32_t ignore_index, float grad_scale,
                                       double* loss_sum, int64_t* counted, void* dlogits,
                                       int64_t ld_dlogits, int64_t* bad_targets, void* scratch,
                                       void* stream);

#ifdef __cplusplus
}
#endif

#endif
