// SwiGLU on the host (plora/swiglu.h): rows in parallel, each converted to fp32 once.
#include <omp.h>

#include <cmath>
#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/swiglu.h"
#include "rows.h"

using namespace plora;

namespace {

inline float sigmoid(float g) { return 1.0f / (1.0f + std::exp(-g)); }

}  // namespace

extern "C" {

int plora_cpu_swiglu(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, void* h, int64_t ld_h,
                     int dtype, int64_t rows, int64_t cols) {
  PLORA_TRY(check_swiglu_args(gate, ld_gate, up, ld_up, "h", h, ld_h, dtype, rows, cols));
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> g(static_cast<size_t>(cols)), u(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      row_to_f32(row_at(gate, dtype, ld_gate, i), dtype, cols, g.data());
      row_to_f32(row_at(up, dtype, ld_up, i), dtype, cols, u.data());
      for (int64_t j = 0; j < cols; ++j) g[j] = round_f32(dtype, g[j] * sigmoid(g[j])) * u[j];
      f32_to_row(g.data(), dtype, cols, row_at(h, dtype, ld_h, i));
    }
  }
  return ok();
}

int plora_cpu_swiglu_backward(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, const void* dh,
                              int64_t ld_dh, void* dgate, int64_t ld_dgate, void* dup, int64_t ld_dup, int dtype,
                              int64_t rows, int64_t cols) {
  PLORA_TRY(check_swiglu_args(gate, ld_gate, up, ld_up, "dh", dh, ld_dh, dtype, rows, cols));
  PLORA_TRY(check_matrix("dgate", dgate, ld_dgate, rows, cols));
  PLORA_TRY(check_matrix("dup", dup, ld_dup, rows, cols));
#pragma omp parallel if (parallel_worth(rows * cols))
  {
    std::vector<float> g(static_cast<size_t>(cols)), u(static_cast<size_t>(cols)), d(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      row_to_f32(row_at(gate, dtype, ld_gate, i), dtype, cols, g.data());
      row_to_f32(row_at(up, dtype, ld_up, i), dtype, cols, u.data());
      row_to_f32(row_at(dh, dtype, ld_dh, i), dtype, cols, d.data());
      for (int64_t j = 0; j < cols; ++j) {
        const float s = sigmoid(g[j]), silu = g[j] * s;
        const float dg = d[j] * u[j] * (s * (1.0f + g[j] * (1.0f - s)));
        u[j] = d[j] * silu;  // dup
        g[j] = dg;
      }
      // the row was read whole above, so dgate may be gate and dup may be up
      f32_to_row(g.data(), dtype, cols, row_at(dgate, dtype, ld_dgate, i));
      f32_to_row(u.data(), dtype, cols, row_at(dup, dtype, ld_dup, i));
    }
  }
  return ok();
}

}  // extern "C"
