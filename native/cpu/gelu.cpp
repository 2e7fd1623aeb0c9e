// Kernel family gelu on the host: GELU forward and backward.
#include <omp.h>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/gelu.h"
#include "tiles.h"
#include "vmath.h"

using namespace plora;

namespace {

// out[t] = f(x[t], dy[t]) for t < cols, eight at a time, on rows of storage type R (dy may be null,
// out may be dy). The tail runs through the same vector code, so every element gets the same
// arithmetic.
template <class R, class F>
void map_row(const void* x, const void* dy, void* out, int64_t cols, F f) {
  int64_t t = 0;
  for (; t + 8 <= cols; t += 8) R::store(out, t, f(R::load(x, t), dy ? R::load(dy, t) : v8{}), nullptr);
  if (t == cols) return;
  v8 xv = {}, dv = {};
  for (int64_t l = 0; l < cols - t; ++l) {
    xv[l] = R::load1(x, t + l);
    if (dy) dv[l] = R::load1(dy, t + l);
  }
  const v8 y = f(xv, dv);
  for (int64_t l = 0; l < cols - t; ++l) R::store1(out, t + l, y[l], nullptr);
}

// map_row over every row, in parallel, for the dtype's row type.
template <class F>
void map_rows(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy, void* out, int64_t ld_out, int dtype,
              int64_t rows, int64_t cols, F f) {
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
  for (int64_t i = 0; i < rows; ++i) {
    const char* xr = row_at(x, dtype, ld_x, i);
    const char* dyr = dy ? row_at(dy, dtype, ld_dy, i) : nullptr;
    char* outr = row_at(out, dtype, ld_out, i);
    if (dtype == PLORA_F32) map_row<F32Rows>(xr, dyr, outr, cols, f);
    else if (dtype == PLORA_BF16) map_row<Bf16Rows<false>>(xr, dyr, outr, cols, f);
    else map_row<F16Rows>(xr, dyr, outr, cols, f);
  }
}

}  // namespace

extern "C" {

int plora_cpu_gelu(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype, int64_t rows, int64_t cols) {
  PLORA_TRY(check_elementwise_args(x, ld_x, nullptr, 0, y, ld_y, dtype, rows, cols));
  map_rows(x, ld_x, nullptr, 0, y, ld_y, dtype, rows, cols, [](v8 v, v8) { return v * v8_normal_cdf(v); });
  return ok();
}

// dx = dy * (Phi(x) + x * phi(x)); dx may be dy.
int plora_cpu_gelu_backward(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy, void* dx, int64_t ld_dx,
                            int dtype, int64_t rows, int64_t cols) {
  PLORA_TRY(check_elementwise_args(x, ld_x, dy, ld_dy, dx, ld_dx, dtype, rows, cols));
  map_rows(x, ld_x, dy, ld_dy, dx, ld_dx, dtype, rows, cols,
           [](v8 v, v8 g) { return g * (v8_normal_cdf(v) + v * v8_normal_pdf(v)); });
  return ok();
}

}  // extern "C"
