// LoRA shrink on the host: out = scaling * (x * mask / (1-p)) * A^T, dropout fused.
// Register tile: 4 rows of x against 16 columns of A^T (packed fp32, zero padded).
#include <omp.h>

#include <vector>

#include "../common/contracts.h"
#include "plora/cpu.h"
#include "rows.h"

using namespace plora;

namespace {

constexpr int kRows = 4;

}  // namespace

extern "C" {

int plora_cpu_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols, float p,
                           uint64_t seed, uint64_t stream) {
  PLORA_TRY(check_matrix_args("out", out, dtype, ld, rows, cols));
  PLORA_TRY(check_dropout(p));
  const DropoutKeys dropout(p, seed, stream);
  char* base = static_cast<char*>(out);
#pragma omp parallel
  {
    std::vector<float> factors(static_cast<size_t>(cols));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      dropout.factors(static_cast<uint64_t>(i * cols), cols, factors.data());
      void* row = base + i * ld * dtype_size(dtype);
      for (int64_t j = 0; j < cols; ++j) store_f32(row, dtype, j, factors[j]);
    }
  }
  return ok();
}

int plora_cpu_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out,
                     int64_t ld_out, int dtype, int64_t m, int64_t k, int64_t r, float scaling,
                     float p, uint64_t seed, uint64_t stream) {
  PLORA_TRY(check_shrink_args(x, ld_x, a, ld_a, out, ld_out, dtype, m, k, r, p));
  if (m == 0 || r == 0) return ok();

  const int64_t rp = round_up(r, 16);
  const std::vector<float> at = pack_f32(a, dtype, ld_a, r, k, rp, /*transpose=*/true);  // [k, rp]
  const DropoutKeys dropout(p, seed, stream);
  char* out_base = static_cast<char*>(out);
  const int64_t blocks = (m + kRows - 1) / kRows;

#pragma omp parallel
  {
    std::vector<float> buffers(static_cast<size_t>(kRows * k));
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kRows;
      const int rows = static_cast<int>(m - i0 < kRows ? m - i0 : kRows);
      const float* xr[kRows];
      for (int i = 0; i < kRows; ++i)  // a short last block repeats its first row, unused
        xr[i] = dropped_row(x, dtype, ld_x, i0 + (i < rows ? i : 0), k, dropout, buffers.data() + i * k);
      for (int64_t j0 = 0; j0 < rp; j0 += 16) {
        v8 acc[kRows][2] = {};
        const float* col = at.data() + j0;
        for (int64_t t = 0; t < k; ++t) {
          const v8 a0 = v8_load(col + t * rp), a1 = v8_load(col + t * rp + 8);
          for (int i = 0; i < kRows; ++i) {
            const v8 xv = v8_splat(xr[i][t]);
            acc[i][0] += xv * a0;
            acc[i][1] += xv * a1;
          }
        }
        for (int i = 0; i < rows; ++i) {
          void* orow = out_base + (i0 + i) * ld_out * dtype_size(dtype);
          for (int c = 0; c < 16 && j0 + c < r; ++c) store_f32(orow, dtype, j0 + c, scaling * acc[i][c / 8][c % 8]);
        }
      }
    }
  }
  return ok();
}

}  // extern "C"
