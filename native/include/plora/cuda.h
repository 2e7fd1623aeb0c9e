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

PLORA_API int plora_cuda_dy_pass(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b,
                                 const void* ss, int64_t ld_ss, void* ds, int64_t ld_ds, float* db,
                                 int64_t ld_db, int dtype, int64_t m, int64_t n, int64_t r,
                                 float scaling, void* stream);

PLORA_API int plora_cuda_da_dx(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds,
                               const void* a, int64_t ld_a, float* da, int64_t ld_da, void* dx,
                               int64_t ld_dx, int dtype, int64_t m, int64_t k, int64_t r, float p,
                               uint64_t seed, uint64_t stream_id, void* stream);

PLORA_API int plora_cuda_axpby(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta,
                               void* y, int y_dtype, int64_t ld_y, int64_t rows, int64_t cols,
                               void* stream);

PLORA_API int plora_cuda_add_bias(void* y, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                  const void* bias, int bias_dtype, void* stream);

PLORA_API int plora_cuda_random_fill(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                     int distribution, float a, float b, uint64_t seed,
                                     uint64_t stream_id, void* stream);

/* Counts into device_counter (8 bytes of device memory the caller owns), waits for the stream,
 * and stores the count in *count on the host. */
PLORA_API int plora_cuda_count_nonfinite(const void* x, int dtype, int64_t ld, int64_t rows,
                                         int64_t cols, void* device_counter, int64_t* count,
                                         void* stream);

/* The functions below that return a number to the host (sum_squares, mse, softmax_xent) use
 * `scratch`: at least PLORA_CUDA_SCRATCH_BYTES of device memory owned by the caller; they wait
 * for the stream before returning. */
#define PLORA_CUDA_SCRATCH_BYTES 256

PLORA_API int plora_cuda_merge(void* w, int w_dtype, int64_t ld_w, void* b, int64_t ld_b, void* a,
                               int64_t ld_a, int ab_dtype, int64_t n, int64_t k, int64_t r,
                               float c, int rounding, uint64_t seed, uint64_t stream_id,
                               float scale_a, float scale_b, void* stream);

/* The host arrays are read before the call returns; `table` is device memory of at least
 * 9 * 8 * count bytes (table_bytes) that receives them. */
PLORA_API int plora_cuda_adamw(int count, const int64_t* params, const int64_t* grads,
                               const int64_t* m, const int64_t* v, const int64_t* copies,
                               const int64_t* copy_ld, const int64_t* rows, const int64_t* cols,
                               const float* lr_scale, int copy_dtype, float lr, float beta1,
                               float beta2, float eps, float weight_decay, float grad_scale,
                               float bias_correction1, float bias_correction2, void* table,
                               int64_t table_bytes, void* stream);

PLORA_API int plora_cuda_sum_squares(const void* x, int dtype, int64_t ld, int64_t rows,
                                     int64_t cols, double* out, void* scratch, void* stream);

/* The sum of squares of `count` tensors (as plora_cpu_sum_squares_many, but added on the device
 * by atomics, in no fixed order) with one wait for the stream, not one per tensor. */
PLORA_API int plora_cuda_sum_squares_many(int count, const int64_t* x, const int* dtypes,
                                          const int64_t* ld, const int64_t* rows,
                                          const int64_t* cols, double* out, void* scratch,
                                          void* stream);

PLORA_API int plora_cuda_gelu(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype,
                              int64_t rows, int64_t cols, void* stream);

PLORA_API int plora_cuda_gelu_backward(const void* x, int64_t ld_x, const void* dy,
                                       int64_t ld_dy, void* dx, int64_t ld_dx, int dtype,
                                       int64_t rows, int64_t cols, void* stream);

PLORA_API int plora_cuda_mse(const void* pred, int64_t ld_pred, const void* target,
                             int64_t ld_target, int dtype, int64_t rows, int64_t cols,
                             double* loss, void* dpred, int64_t ld_dpred, void* scratch,
                             void* stream);

/* labels is a device pointer (fp32 [rows, 1]). */
PLORA_API int plora_cuda_softmax_xent(const void* logits, int64_t ld_logits, int dtype,
                                      int64_t rows, int64_t cols, const float* labels,
                                      double* loss, void* dlogits, int64_t ld_dlogits,
                                      int64_t* bad_labels, void* scratch, void* stream);

#ifdef __cplusplus
}
#endif

#endif
