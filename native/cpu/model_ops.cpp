// Model ops on the host: sum of squares, GELU, MSE and softmax cross-entropy.
#include <omp.h>

#include <cmath>
#include <vector>

#include "../common/contracts.h"
#include "plora/cpu.h"

using namespace plora;

namespace {

inline const char* row_at(const void* base, int dtype, int64_t ld, int64_t i) {
  return static_cast<const char*>(base) + i * ld * dtype_size(dtype);
}

inline char* row_at(void* base, int dtype, int64_t ld, int64_t i) {
  return static_cast<char*>(base) + i * ld * dtype_size(dtype);
}

// Row partials summed in row order: the result does not depend on the thread count or timing,
// so training runs are reproducible bit for bit.
double ordered_sum(const std::vector<double>& partial) {
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

}  // namespace

extern "C" {

int plora_cpu_sum_squares(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, double* out) {
  PLORA_TRY(check_matrix_args("x", x, dtype, ld, rows, cols));
  PLORA_TRY(check_out_pointer("out", out));
  std::vector<double> partial(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const char* row = row_at(x, dtype, ld, i);
    double s = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      const double v = load_f32(row, dtype, j);
      s += v * v;
    }
    partial[i] = s;
  }
  *out = ordered_sum(partial);
  return ok();
}

int plora_cpu_gelu(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype, int64_t rows, int64_t cols) {
  PLORA_TRY(check_elementwise_args(x, ld_x, nullptr, 0, y, ld_y, dtype, rows, cols));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const char* xr = row_at(x, dtype, ld_x, i);
    char* yr = row_at(y, dtype, ld_y, i);
    for (int64_t j = 0; j < cols; ++j) {
      const float v = load_f32(xr, dtype, j);
      store_f32(yr, dtype, j, v * 0.5f * (1.0f + std::erf(v * kInvSqrt2)));
    }
  }
  return ok();
}

int plora_cpu_gelu_backward(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy, void* dx, int64_t ld_dx,
                            int dtype, int64_t rows, int64_t cols) {
  PLORA_TRY(check_elementwise_args(x, ld_x, dy, ld_dy, dx, ld_dx, dtype, rows, cols));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const char* xr = row_at(x, dtype, ld_x, i);
    const char* dyr = row_at(dy, dtype, ld_dy, i);
    char* dxr = row_at(dx, dtype, ld_dx, i);
    for (int64_t j = 0; j < cols; ++j) {
      const float v = load_f32(xr, dtype, j);
      const float cdf = 0.5f * (1.0f + std::erf(v * kInvSqrt2));
      const float pdf = kInvSqrt2Pi * std::exp(-0.5f * v * v);
      store_f32(dxr, dtype, j, load_f32(dyr, dtype, j) * (cdf + v * pdf));
    }
  }
  return ok();
}

int plora_cpu_mse(const void* pred, int64_t ld_pred, const void* target, int64_t ld_target, int dtype,
                  int64_t rows, int64_t cols, double* loss, void* dpred, int64_t ld_dpred) {
  PLORA_TRY(check_mse_args(pred, ld_pred, target, ld_target, dtype, rows, cols, loss, dpred, ld_dpred));
  const float grad_scale = static_cast<float>(2.0 / (static_cast<double>(rows) * cols));
  std::vector<double> partial(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const char* pr = row_at(pred, dtype, ld_pred, i);
    const char* tr = row_at(target, dtype, ld_target, i);
    double s = 0.0;
    for (int64_t j = 0; j < cols; ++j) {
      const float d = load_f32(pr, dtype, j) - load_f32(tr, dtype, j);
      s += static_cast<double>(d) * d;
      if (dpred != nullptr) store_f32(row_at(dpred, dtype, ld_dpred, i), dtype, j, grad_scale * d);
    }
    partial[i] = s;
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
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    const char* lr = row_at(logits, dtype, ld_logits, i);
    float mx = -INFINITY;
    for (int64_t j = 0; j < cols; ++j) mx = std::fmax(mx, load_f32(lr, dtype, j));
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) sum += std::exp(static_cast<double>(load_f32(lr, dtype, j)) - mx);
    const int64_t label = static_cast<int64_t>(labels[i]);
    const double lse = mx + std::log(sum);
    partial[i] = lse - load_f32(lr, dtype, label);
    if (dlogits != nullptr) {
      char* dr = row_at(dlogits, dtype, ld_dlogits, i);
      for (int64_t j = 0; j < cols; ++j) {
        const double p = std::exp(static_cast<double>(load_f32(lr, dtype, j)) - lse);
        store_f32(dr, dtype, j, static_cast<float>((p - (j == label ? 1.0 : 0.0)) / static_cast<double>(rows)));
      }
    }
  }
  *loss = ordered_sum(partial) / static_cast<double>(rows);
  return ok();
}

}  // extern "C"
