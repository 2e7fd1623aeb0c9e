// Token cross-entropy on the host (plora/cross_entropy.h): rows in parallel, eight exponentials
// at a time in fp32 (within 2 ulp) summed in double; per-row losses added in row order, so the
// sum does not depend on the thread count.
#include <omp.h>

#include <cmath>
#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/cross_entropy.h"
#include "rows.h"
#include "sums.h"
#include "vmath.h"

using namespace plora;

namespace {

// Σ e^(x_j - shift) in double: eight lanes, then the lanes in order
double sum_exp(const float* x, int64_t n, float shift) {
  double lanes[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const v8 e = v8_exp(v8_load(x + j) - v8_splat(shift));
    for (int l = 0; l < 8; ++l) lanes[l] += e[l];
  }
  double s = 0;
  for (int l = 0; l < 8; ++l) s += lanes[l];
  for (; j < n; ++j) s += std::exp(static_cast<double>(x[j]) - shift);
  return s;
}

// g_j = scale * e^(x_j - lse) for the row (the one-hot is subtracted by the caller)
void scaled_softmax(const float* x, int64_t n, float lse, float scale, float* g) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) v8_store(g + j, v8_splat(scale) * v8_exp(v8_load(x + j) - v8_splat(lse)));
  for (; j < n; ++j) g[j] = scale * static_cast<float>(std::exp(static_cast<double>(x[j]) - lse));
}

}  // namespace

extern "C" {

int plora_cpu_cross_entropy(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t vocab,
                            const int32_t* targets, int64_t ld_targets, int32_t ignore_index, float grad_scale,
                            double* loss_sum, int64_t* counted, void* dlogits, int64_t ld_dlogits,
                            int64_t* bad_targets) {
  PLORA_TRY(check_cross_entropy_args(logits, ld_logits, dtype, rows, vocab, targets, ld_targets, grad_scale, loss_sum,
                                     counted, dlogits, ld_dlogits));
  int64_t bad = 0, first = -1, valid = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t t = targets[i * ld_targets];
    if (t == ignore_index) continue;
    if (t < 0 || t >= vocab) {
      if (first < 0) first = i;
      ++bad;
    } else {
      ++valid;
    }
  }
  if (bad_targets != nullptr) *bad_targets = bad;
  if (bad != 0)
    return fail(PLORA_ERR_INVALID, "cross_entropy: %lld targets outside [0, %lld) and not %d, the first at row %lld: %d",
                (long long)bad, (long long)vocab, ignore_index, (long long)first, targets[first * ld_targets]);
  std::vector<double> loss(static_cast<size_t>(rows), 0.0);
  const int size = dtype_size(dtype);
#pragma omp parallel if (parallel_worth(rows * vocab))
  {
    std::vector<float> row(static_cast<size_t>(dtype == PLORA_F32 ? 0 : vocab)), g(static_cast<size_t>(vocab));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const int32_t t = targets[i * ld_targets];
      char* out = dlogits == nullptr ? nullptr : static_cast<char*>(dlogits) + i * ld_dlogits * size;
      if (t == ignore_index) {
        if (out != nullptr) {
          std::fill(g.begin(), g.end(), 0.0f);
          f32_to_row(g.data(), dtype, vocab, out);
        }
        continue;
      }
      const float* x = f32_row(logits, dtype, ld_logits, i, vocab, row.data());
      const float max = row_max(x, vocab);
      const double lse_exact = max + std::log(sum_exp(x, vocab, max));
      const float lse = static_cast<float>(lse_exact);
      loss[i] = lse_exact - x[t];
      if (out != nullptr) {
        scaled_softmax(x, vocab, lse, grad_scale, g.data());  // x is read whole before out is written
        g[t] -= grad_scale;
        f32_to_row(g.data(), dtype, vocab, out);
      }
    }
  }
  *loss_sum = ordered_sum(loss);
  *counted = valid;
  return ok();
}

}  // extern "C"
