/* The argument contract of each kernel, in one place for its C++ and CUDA implementations (the
 * Java side checks first and names the tensors; these guard direct C callers). Each returns
 * PLORA_OK or records the failure and returns PLORA_ERR_INVALID. */
#ifndef PLORA_COMMON_CONTRACTS_H
#define PLORA_COMMON_CONTRACTS_H

#include <cstdint>

#include "checks.h"

namespace plora {

inline int check_storable_dtype(const char* name, int dtype) {
  if (!dtype_storable(dtype)) return fail(PLORA_ERR_INVALID, "%s: unknown dtype code %d", name, dtype);
  return PLORA_OK;
}

/* Copies convert between the float dtypes; I32 copies only to I32. */
inline int check_copy_args(const void* src, int src_dtype, int64_t ld_src, const void* dst, int dst_dtype,
                           int64_t ld_dst, int64_t rows, int64_t cols) {
  PLORA_TRY(check_storable_dtype("src", src_dtype));
  PLORA_TRY(check_storable_dtype("dst", dst_dtype));
  if ((src_dtype == PLORA_I32) != (dst_dtype == PLORA_I32))
    return fail(PLORA_ERR_INVALID, "copy: I32 copies only to I32 (src dtype %d, dst dtype %d)", src_dtype,
                dst_dtype);
  PLORA_TRY(check_matrix("src", src, ld_src, rows, cols));
  return check_matrix("dst", dst, ld_dst, rows, cols);
}

/* A fill of any storage type; an I32 fill takes an integer in int32 range. */
inline int check_fill_args(const void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols, float value) {
  PLORA_TRY(check_storable_dtype("dst", dtype));
  const bool integral = value >= -2147483648.0f && value < 2147483648.0f &&
                        value == static_cast<float>(static_cast<int64_t>(value));
  if (dtype == PLORA_I32 && !integral)
    return fail(PLORA_ERR_INVALID, "fill: value %g is not an integer in int32 range for an I32 dst", value);
  return check_matrix("dst", dst, ld, rows, cols);
}

/* One matrix of a dtype: fill, random fill, dropout mask, sum of squares, non-finite count. */
inline int check_matrix_args(const char* name, const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols) {
  PLORA_TRY(check_dtype(name, dtype));
  return check_matrix(name, x, ld, rows, cols);
}

inline int check_shrink_args(const void* x, int64_t ld_x, const void* a, int64_t ld_a, const void* out,
                             int64_t ld_out, int dtype, int64_t m, int64_t k, int64_t r, float p) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("x", x, ld_x, m, k));
  PLORA_TRY(check_matrix("a", a, ld_a, r, k));
  PLORA_TRY(check_matrix("out", out, ld_out, m, r));
  return check_dropout(p);
}

inline int check_dy_pass_args(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, const void* ss,
                              int64_t ld_ss, const void* ds, int64_t ld_ds, const float* db, int64_t ld_db,
                              int dtype, int64_t m, int64_t n, int64_t r) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("dy", dy, ld_dy, m, n));
  PLORA_TRY(check_matrix("b", b, ld_b, n, r));
  PLORA_TRY(check_matrix("ss", ss, ld_ss, m, r));
  PLORA_TRY(check_matrix("ds", ds, ld_ds, m, r));
  return check_matrix("db", db, ld_db, n, r);
}

inline int check_da_dx_args(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a,
                            int64_t ld_a, const float* da, int64_t ld_da, const void* dx, int64_t ld_dx, int dtype,
                            int64_t m, int64_t k, int64_t r, float p) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("x", x, ld_x, m, k));
  PLORA_TRY(check_matrix("ds", ds, ld_ds, m, r));
  PLORA_TRY(check_matrix("a", a, ld_a, r, k));
  PLORA_TRY(check_matrix("da", da, ld_da, r, k));
  if (dx != nullptr) PLORA_TRY(check_matrix("dx", dx, ld_dx, m, k));
  return check_dropout(p);
}

inline int check_merge_args(const void* w, int w_dtype, int64_t ld_w, const void* b, int64_t ld_b, const void* a,
                            int64_t ld_a, int ab_dtype, int64_t n, int64_t k, int64_t r, int rounding) {
  PLORA_TRY(check_dtype("w", w_dtype));
  PLORA_TRY(check_dtype("a/b", ab_dtype));
  PLORA_TRY(check_matrix("w", w, ld_w, n, k));
  PLORA_TRY(check_matrix("b", b, ld_b, n, r));
  PLORA_TRY(check_matrix("a", a, ld_a, r, k));
  if (rounding != PLORA_ROUND_NEAREST && rounding != PLORA_ROUND_STOCHASTIC)
    return fail(PLORA_ERR_INVALID, "merge: unknown rounding %d", rounding);
  return PLORA_OK;
}

inline int check_adamw_args(int count, const int64_t* params, const int64_t* grads, const int64_t* m,
                            const int64_t* v, const int64_t* copies, const int64_t* copy_ld, const int64_t* rows,
                            const int64_t* cols, const float* lr_scale, int copy_dtype) {
  if (count < 0) return fail(PLORA_ERR_INVALID, "adamw: count %d < 0", count);
  if (count == 0) return PLORA_OK;
  if (!params || !grads || !m || !v || !copies || !copy_ld || !rows || !cols || !lr_scale)
    return fail(PLORA_ERR_INVALID, "adamw: null table");
  PLORA_TRY(check_dtype("copy", copy_dtype));
  for (int i = 0; i < count; ++i) {
    if (rows[i] < 0 || cols[i] < 0) return fail(PLORA_ERR_INVALID, "adamw: tensor %d has a negative shape", i);
    if (!params[i] || !grads[i] || !m[i] || !v[i])
      return fail(PLORA_ERR_INVALID, "adamw: tensor %d has a null pointer", i);
    if (copies[i] && copy_ld[i] < cols[i]) return fail(PLORA_ERR_INVALID, "adamw: copy %d has ld < cols", i);
  }
  return PLORA_OK;
}

inline int check_axpby_args(const void* x, int x_dtype, int64_t ld_x, const void* y, int y_dtype, int64_t ld_y,
                            int64_t rows, int64_t cols) {
  PLORA_TRY(check_dtype("x", x_dtype));  // float dtypes only, unlike a copy
  PLORA_TRY(check_dtype("y", y_dtype));
  PLORA_TRY(check_matrix("x", x, ld_x, rows, cols));
  return check_matrix("y", y, ld_y, rows, cols);
}

inline int check_add_bias_args(const void* y, int dtype, int64_t ld, int64_t rows, int64_t cols, const void* bias,
                               int bias_dtype) {
  PLORA_TRY(check_matrix_args("y", y, dtype, ld, rows, cols));
  PLORA_TRY(check_dtype("bias", bias_dtype));
  return check_matrix("bias", bias, cols, 1, cols);
}

inline int check_distribution(int distribution) {
  if (distribution != PLORA_UNIFORM && distribution != PLORA_NORMAL)
    return fail(PLORA_ERR_INVALID, "random_fill: unknown distribution %d", distribution);
  return PLORA_OK;
}

/* Elementwise x -> y (gelu), or x, dy -> dx (gelu backward, with `dy` given). */
inline int check_elementwise_args(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy, const void* out,
                                  int64_t ld_out, int dtype, int64_t rows, int64_t cols) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("x", x, ld_x, rows, cols));
  if (dy != nullptr) PLORA_TRY(check_matrix("dy", dy, ld_dy, rows, cols));
  return check_matrix("out", out, ld_out, rows, cols);
}

inline int check_mse_args(const void* pred, int64_t ld_pred, const void* target, int64_t ld_target, int dtype,
                          int64_t rows, int64_t cols, const double* loss, const void* dpred, int64_t ld_dpred) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("pred", pred, ld_pred, rows, cols));
  PLORA_TRY(check_matrix("target", target, ld_target, rows, cols));
  if (dpred != nullptr) PLORA_TRY(check_matrix("dpred", dpred, ld_dpred, rows, cols));
  if (loss == nullptr) return fail(PLORA_ERR_INVALID, "loss: null pointer");
  if (rows == 0 || cols == 0) return fail(PLORA_ERR_INVALID, "mse of an empty matrix");
  return PLORA_OK;
}

inline int check_xent_args(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t cols,
                           const float* labels, const double* loss, const void* dlogits, int64_t ld_dlogits,
                           const int64_t* bad_labels) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("logits", logits, ld_logits, rows, cols));
  PLORA_TRY(check_matrix("labels", labels, 1, rows, 1));
  if (dlogits != nullptr) PLORA_TRY(check_matrix("dlogits", dlogits, ld_dlogits, rows, cols));
  if (loss == nullptr || bad_labels == nullptr) return fail(PLORA_ERR_INVALID, "loss/bad_labels: null pointer");
  if (rows == 0 || cols == 0) return fail(PLORA_ERR_INVALID, "cross-entropy of an empty matrix");
  return PLORA_OK;
}

inline int check_out_pointer(const char* name, const void* p) {
  if (p == nullptr) return fail(PLORA_ERR_INVALID, "%s: null pointer", name);
  return PLORA_OK;
}

inline int check_sum_squares_many_args(int count, const int64_t* x, const int* dtypes, const int64_t* ld,
                                       const int64_t* rows, const int64_t* cols, const double* out) {
  if (count < 0) return fail(PLORA_ERR_INVALID, "sum_squares_many: count %d < 0", count);
  PLORA_TRY(check_out_pointer("out", out));
  if (count == 0) return PLORA_OK;
  if (!x || !dtypes || !ld || !rows || !cols) return fail(PLORA_ERR_INVALID, "sum_squares_many: null table");
  for (int i = 0; i < count; ++i)
    if (check_matrix_args("x", reinterpret_cast<const void*>(x[i]), dtypes[i], ld[i], rows[i], cols[i]) != PLORA_OK)
      return fail(PLORA_ERR_INVALID, "sum_squares_many: tensor %d of %d: %s", i, count, last_error().c_str());
  return PLORA_OK;
}

inline int check_rmsnorm_args(const void* x, int64_t ld_x, const void* w, const void* y, int64_t ld_y, int dtype,
                              int64_t rows, int64_t cols, float eps) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("x", x, ld_x, rows, cols));
  PLORA_TRY(check_matrix("w", w, cols, 1, cols));
  PLORA_TRY(check_matrix("y", y, ld_y, rows, cols));
  if (!(eps > 0.0f && eps <= 3.402823466e38f)) return fail(PLORA_ERR_INVALID, "rmsnorm: eps %g is not finite and > 0", eps);
  return PLORA_OK;
}

inline int check_rmsnorm_backward_args(const void* x, int64_t ld_x, const void* w, const float* rstd, const void* dy,
                                       int64_t ld_dy, const void* dx, int64_t ld_dx, int dtype, int64_t rows,
                                       int64_t cols) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("x", x, ld_x, rows, cols));
  PLORA_TRY(check_matrix("w", w, cols, 1, cols));
  PLORA_TRY(check_matrix("rstd", rstd, 1, rows, 1));
  PLORA_TRY(check_matrix("dy", dy, ld_dy, rows, cols));
  return check_matrix("dx", dx, ld_dx, rows, cols);
}

/* gate, up and one more [rows, cols] operand of SwiGLU (h forward, dh backward). */
inline int check_swiglu_args(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, const char* name,
                             const void* other, int64_t ld_other, int dtype, int64_t rows, int64_t cols) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("gate", gate, ld_gate, rows, cols));
  PLORA_TRY(check_matrix("up", up, ld_up, rows, cols));
  return check_matrix(name, other, ld_other, rows, cols);
}

/* ids [tokens] (stride ld_ids), a [vocab, dim] table and a [tokens, dim] matrix of rows. */
inline int check_embedding_args(const int32_t* ids, int64_t ld_ids, const void* table, int64_t ld_table,
                                int table_dtype, const void* rows_of_tokens, int64_t ld_rows, int rows_dtype,
                                int64_t tokens, int64_t vocab, int64_t dim) {
  PLORA_TRY(check_dtype("table", table_dtype));
  PLORA_TRY(check_dtype("rows", rows_dtype));
  PLORA_TRY(check_matrix("ids", ids, ld_ids, tokens, 1));
  PLORA_TRY(check_matrix("table", table, ld_table, vocab, dim));
  return check_matrix("rows", rows_of_tokens, ld_rows, tokens, dim);
}

inline int check_rope_args(const void* x, int64_t ld_x, int dtype, int64_t rows, int64_t heads, int64_t head_dim,
                           const int32_t* positions, int64_t ld_pos, const float* inv_freq) {
  PLORA_TRY(check_dtype("dtype", dtype));
  if (heads < 0 || head_dim < 0 || head_dim % 2 != 0)
    return fail(PLORA_ERR_INVALID, "rope: heads %lld and head_dim %lld must be >= 0, head_dim even", (long long)heads,
                (long long)head_dim);
  PLORA_TRY(check_matrix("x", x, ld_x, rows, heads * head_dim));
  PLORA_TRY(check_matrix("positions", positions, ld_pos, rows, 1));
  return check_matrix("inv_freq", inv_freq, head_dim / 2, rows > 0 ? 1 : 0, head_dim / 2);
}

inline int check_cross_entropy_args(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t vocab,
                                    const int32_t* targets, int64_t ld_targets, float grad_scale,
                                    const double* loss_sum, const int64_t* counted, const void* dlogits,
                                    int64_t ld_dlogits) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("logits", logits, ld_logits, rows, vocab));
  PLORA_TRY(check_matrix("targets", targets, ld_targets, rows, 1));
  PLORA_TRY(check_out_pointer("loss_sum", loss_sum));
  PLORA_TRY(check_out_pointer("counted", counted));
  if (vocab < 1) return fail(PLORA_ERR_INVALID, "cross_entropy: vocab %lld < 1", (long long)vocab);
  if (!(grad_scale > -3.402823466e38f && grad_scale < 3.402823466e38f))
    return fail(PLORA_ERR_INVALID, "cross_entropy: grad_scale %g is not finite", grad_scale);
  return dlogits == nullptr ? PLORA_OK : check_matrix("dlogits", dlogits, ld_dlogits, rows, vocab);
}

}  // namespace plora

#endif
