/* Kernel family losses: losses with their gradient: mean squared error, softmax cross-entropy.
 * Contract beside each declaration; status codes, dtypes and the matrix layout in
 * plora/plora.h. A CUDA entry point takes device pointers and a stream (a cudaStream_t as
 * void*) and keeps the contract of the host function of the same name unless its comment says
 * otherwise. */
#ifndef PLORA_LOSSES_H
#define PLORA_LOSSES_H

#include <stdint.h>

#include "plora/plora.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mean squared error over rows x cols: *loss = mean((pred - target)^2) in double; when dpred is
 * not NULL also dpred = 2 (pred - target) / (rows * cols). */
PLORA_API int plora_cpu_mse(const void* pred, int64_t ld_pred, const void* target,
                            int64_t ld_target, int dtype, int64_t rows, int64_t cols,
                            double* loss, void* dpred, int64_t ld_dpred);
PLORA_API int plora_cuda_mse(const void* pred, int64_t ld_pred, const void* target,
                             int64_t ld_target, int dtype, int64_t rows, int64_t cols,
                             double* loss, void* dpred, int64_t ld_dpred, void* scratch,
                             void* stream);

/* Softmax cross-entropy of logits [rows, cols] against class labels (fp32 [rows, 1] holding
 * integers 0..cols-1): *loss = mean_i (logsumexp(logits_i) - logits_i[label_i]); when dlogits
 * is not NULL also dlogits = (softmax(logits) - onehot(label)) / rows. A label out of range is
 * PLORA_ERR_INVALID and *bad_labels counts them (nothing is written then). */
PLORA_API int plora_cpu_softmax_xent(const void* logits, int64_t ld_logits, int dtype,
                                     int64_t rows, int64_t cols, const float* labels,
                                     double* loss, void* dlogits, int64_t ld_dlogits,
                                     int64_t* bad_labels);
/* labels is a device pointer (fp32 [rows, 1]). */
PLORA_API int plora_cuda_softmax_xent(const void* logits, int64_t ld_logits, int dtype,
                                      int64_t rows, int64_t cols, const float* labels,
                                      double* loss, void* dlogits, int64_t ld_dlogits,
                                      int64_t* bad_labels, void* scratch, void* stream);

#ifdef __cplusplus
}
#endif

#endif
