/* C ABI of libplora_cpu: memory, copies and kernels on the host (C++17, OpenMP).
 * Matrices are row-major with a leading dimension (elements between row starts). */
#ifndef PLORA_CPU_H
#define PLORA_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "plora/plora.h"

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

/* dst[i,j] = src[i,j] for a rows x cols matrix, converting between dtypes (round to nearest). */
PLORA_API int plora_cpu_copy(const void* src, int src_dtype, int64_t ld_src, void* dst,
                             int dst_dtype, int64_t ld_dst, int64_t rows, int64_t cols);

/* dst[i,j] = value (rounded to the dtype). */
PLORA_API int plora_cpu_fill(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols,
                             float value);

/* Writes the dropout multiplier of each element of a rows x cols activation: 1/(1-p) where
 * the element is kept and 0 where it is dropped, from Philox stream (seed, stream). */
PLORA_API int plora_cpu_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows,
                                     int64_t cols, float p, uint64_t seed, uint64_t stream);

/* LoRA shrink: out[m,j] = scaling * sum_k xt[m,k] * a[j,k] with xt = x * mask / (1-p), for
 * x [m,k], a [r,k], out [m,r]; all of one dtype, fp32 accumulation. */
PLORA_API int plora_cpu_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a,
                               void* out, int64_t ld_out, int dtype, int64_t m, int64_t k,
                               int64_t r, float scaling, float p, uint64_t seed,
                               uint64_t stream);

/* dY pass of the LoRA backward, one pass over dy [m,n]:
 *   ds[i,j] = scaling * sum_t dy[i,t] * b[t,j]     ds [m,r], stored in dtype
 *   db[t,j] += sum_i dy[i,t] * ss[i,j]             db [n,r], fp32, accumulated
 * with b [n,r] and ss [m,r] = scaling * S saved by the forward pass; dy, b, ss, ds of one dtype. */
PLORA_API int plora_cpu_dy_pass(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b,
                                const void* ss, int64_t ld_ss, void* ds, int64_t ld_ds, float* db,
                                int64_t ld_db, int dtype, int64_t m, int64_t n, int64_t r,
                                float scaling);

/* dA / dX update of the LoRA backward, one pass over x [m,k]:
 *   da[j,t] += sum_i ds[i,j] * xt[i,t]                          da [r,k], fp32, accumulated
 *   dx[i,t] += mask[i,t]/(1-p) * sum_j ds[i,j] * a[j,t]         only when dx != NULL
 * with xt = x * mask / (1-p), the mask of (seed, stream) as in plora_cpu_shrink; x, ds [m,r],
 * a [r,k] and dx of one dtype. */
PLORA_API int plora_cpu_da_dx(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds,
                              const void* a, int64_t ld_a, float* da, int64_t ld_da, void* dx,
                              int64_t ld_dx, int dtype, int64_t m, int64_t k, int64_t r, float p,
                              uint64_t seed, uint64_t stream);

/* y = alpha * x + beta * y elementwise over rows x cols (y is not read when beta == 0). */
PLORA_API int plora_cpu_axpby(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta,
                              void* y, int y_dtype, int64_t ld_y, int64_t rows, int64_t cols);

/* y[i,j] += bias[j] for a rows x cols y; bias holds cols contiguous values. */
PLORA_API int plora_cpu_add_bias(void* y, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                 const void* bias, int bias_dtype);

/* Random fill from Philox stream (seed, stream), element i = row * cols + col:
 * PLORA_UNIFORM: a + (b - a) * u with u in [0,1); PLORA_NORMAL: mean a, standard deviation b. */
PLORA_API int plora_cpu_random_fill(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                    int distribution, float a, float b, uint64_t seed,
                                    uint64_t stream);

/* *count = number of NaN or infinite elements of a rows x cols matrix. */
PLORA_API int plora_cpu_count_nonfinite(const void* x, int dtype, int64_t ld, int64_t rows,
                                        int64_t cols, int64_t* count);

/* Merge (PLoRA unloading, LoRA merge), in place:
 *   w[i,t] += c * sum_j b[i,j] * a[j,t]        fp32 accumulation
 * w [n,k] in w_dtype; BF16 w is rounded to nearest or stochastically (PLORA_ROUND_STOCHASTIC:
 * Philox (seed, stream), element i*k + t; F16 only rounds to nearest). a [r,k], b [n,r] in
 * ab_dtype. Then, in the same call, a *= scale_a and b *= scale_b (skipped when 1). */
PLORA_API int plora_cpu_merge(void* w, int w_dtype, int64_t ld_w, void* b, int64_t ld_b, void* a,
                              int64_t ld_a, int ab_dtype, int64_t n, int64_t k, int64_t r, float c,
                              int rounding, uint64_t seed, uint64_t stream, float scale_a,
                              float scale_b);

/* Fused AdamW over `count` fp32 tensors, PyTorch's update (decoupled weight decay, bias
 * correction bc1 = 1 - beta1^t, bc2 = 1 - beta2^t computed by the caller):
 *   g = grad * grad_scale;  m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
 *   p = p (1 - lr_i wd) - (lr_i / bc1) m / (sqrt(v / bc2) + eps),   lr_i = lr * lr_scale[i]
 * params[i], grads[i], m[i], v[i] are addresses of rows[i] x cols[i] contiguous fp32 matrices.
 * When copies[i] != 0 the new p is also written, rounded to copy_dtype, to the rows[i] x cols[i]
 * matrix at copies[i] with leading dimension copy_ld[i] (a compute-dtype copy). */
PLORA_API int plora_cpu_adamw(int count, const int64_t* params, const int64_t* grads,
                              const int64_t* m, const int64_t* v, const int64_t* copies,
                              const int64_t* copy_ld, const int64_t* rows, const int64_t* cols,
                              const float* lr_scale, int copy_dtype, float lr, float beta1,
                              float beta2, float eps, float weight_decay, float grad_scale,
                              float bias_correction1, float bias_correction2);

/* *out = sum of x[i,j]^2 in double. */
PLORA_API int plora_cpu_sum_squares(const void* x, int dtype, int64_t ld, int64_t rows,
                                    int64_t cols, double* out);

/* *out = the sum of squares of `count` tensors (tensor t: address x[t], dtypes[t], ld[t], rows[t],
 * cols[t]), summed tensor by tensor in order: a global gradient norm in one call. */
PLORA_API int plora_cpu_sum_squares_many(int count, const int64_t* x, const int* dtypes,
                                         const int64_t* ld, const int64_t* rows,
                                         const int64_t* cols, double* out);

/* GELU (exact, erf form): y = x * Phi(x). x and y of one dtype; y may be x. */
PLORA_API int plora_cpu_gelu(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype,
                             int64_t rows, int64_t cols);

/* dx = dy * (Phi(x) + x * phi(x)); dx may be dy. */
PLORA_API int plora_cpu_gelu_backward(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy,
                                      void* dx, int64_t ld_dx, int dtype, int64_t rows,
                                      int64_t cols);

/* Mean squared error over rows x cols: *loss = mean((pred - target)^2) in double; when dpred is
 * not NULL also dpred = 2 (pred - target) / (rows * cols). */
PLORA_API int plora_cpu_mse(const void* pred, int64_t ld_pred, const void* target,
                            int64_t ld_target, int dtype, int64_t rows, int64_t cols,
                            double* loss, void* dpred, int64_t ld_dpred);

/* Softmax cross-entropy of logits [rows, cols] against class labels (fp32 [rows, 1] holding
 * integers 0..cols-1): *loss = mean_i (logsumexp(logits_i) - logits_i[label_i]); when dlogits
 * is not NULL also dlogits = (softmax(logits) - onehot(label)) / rows. A label out of range is
 * PLORA_ERR_INVALID and *bad_labels counts them (nothing is written then). */
PLORA_API int plora_cpu_softmax_xent(const void* logits, int64_t ld_logits, int dtype,
                                     int64_t rows, int64_t cols, const float* labels,
                                     double* loss, void* dlogits, int64_t ld_dlogits,
                                     int64_t* bad_labels);

#ifdef __cplusplus
}
#endif

#endif
