// Kernel family losses on the host: MSE and softmax cross-entropy.
#include <omp.h>

#include <cmath>
#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/losses.h"
#include "rows.h"
#include "sums.h"
#include "vmath.h"

using namespace plora;

namespace {

typedef float f4 __attribute__((vector_size(16)));

// f(j, e^(x[j..j+3] - shift)) for j = 0, 4, 8, ... < n, in double (lanes past n hold e^-inf = 0)
template <class F>
void for_each_exp(const float* x, int64_t n, double shift, F f) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    f4 v;
    __builtin_memcpy(&v, x + j, sizeof v);
    f(j, d4_exp(__builtin_convertvector(v, d4) - shift));
  }
  if (j == n) return;
  d4 v = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  for (int l = 0; l < n - j; ++l) v[l] = static_cast<double>(x[j + l]) - shift;
  f(j, d4_exp(v));
}

// e[j] = e^(x[j] - shift) in double (e padded to a multiple of 4); returns their sum, taken in four
// lanes and then in lane order
double exps(const float* x, int64_t n, double shift, double* e) {
  d4 acc = {};
  for_each_exp(x, n, shift, [&](int64_t j, d4 v) {
    __builtin_memcpy(e + j, &v, sizeof v);
    acc += v;
  });
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

}  // namespace

extern "C" {

int plora_cpu_mse(const void* pred, int64_t ld_pred, const void* target, int64_t ld_target, int dtype,
                  int64_t rows, int64_t cols, double* loss, void* dpred, int64_t ld_dpred) {
  PLORA_TRY(check_mse_args(pred, ld_pred, target, ld_target, dtype, rows, cols, loss, dpred, ld_dpred));
  const float grad_scale = static_cast<float>(2.0 / (static_cast<double>(rows) * cols));
  std::vector<double> partial(static_cast<size_t>(rows));
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> pb(static_cast<size_t>(cols)), tb(static_cast<size_t>(cols)), d(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const float* p = f32_row(pred, dtype, ld_pred, i, cols, pb.data());
      const float* t = f32_row(target, dtype, ld_target, i, cols, tb.data());
      for (int64_t j = 0; j < cols; ++j) d[j] = p[j] - t[j];
      partial[i] = sum_squares_f64(d.data(), cols);
      if (dpred == nullptr) continue;  // the row is read whole above, so dpred may be pred
      for (int64_t j = 0; j < cols; ++j) d[j] *= grad_scale;
      f32_to_row(d.data(), dtype, cols, row_at(dpred, dtype, ld_dpred, i));
    }
  }
  *loss = ordered_sum(partial) / (static_cast<double>(rows) * cols);
  return ok();
}

int plora_cpu_softmax_xent(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t cols,
                           const float* labels, double* loss, void* dlogits, int64_t ld_dlogits,
                           int64_t* bad_labels) {
  PLORA_TRY(check_xent_args(logits, ld_logits, dtype, rows, cols, labels, loss, dlogits, ld_dlogits, bad_labels));
  int64_t bad = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const float l = labels[i];
    if (!(l >= 0.0f && l < static_cast<float>(cols) && l == std::floor(l))) ++bad;
  }
  *bad_labels = bad;
  if (bad > 0) return fail(PLORA_ERR_INVALID, "%lld labels are not class indices in [0, %lld)", (long long)bad, (long long)cols);
  std::vector<double> partial(static_cast<size_t>(rows));
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> buffer(static_cast<size_t>(cols)), grad(dlogits != nullptr ? static_cast<size_t>(cols) : 0u);
    std::vector<double> e(static_cast<size_t>((cols + 3) / 4 * 4));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const float* x = f32_row(logits, dtype, ld_logits, i, cols, buffer.data());
      const int64_t label = static_cast<int64_t>(labels[i]);
      const double mx = row_max(x, cols), sum = exps(x, cols, mx, e.data());
      partial[i] = mx + std::log(sum) - x[label];
      if (dlogits == nullptr) continue;
      // (softmax - one-hot) / rows, softmax = e / sum, in double and rounded once
      const double inv_sum = 1.0 / sum, inv_rows = 1.0 / static_cast<double>(rows);
      for (int64_t j = 0; j < cols; ++j) grad[j] = static_cast<float>((e[j] * inv_sum - (j == label ? 1.0 : 0.0)) * inv_rows);
      f32_to_row(grad.data(), dtype, cols, row_at(dlogits, dtype, ld_dlogits, i));
    }
  }
  *loss = ordered_sum(partial) / static_cast<double>(rows);
  return ok();
}

}  // extern "C"
