// Kernel family lora on the host: the shrink (forward, register tile: 4 rows of x against 16
// columns of A^T, packed fp32, zero padded) with its dropout mask, the dY pass (dS and dB from one
// pass over dY) and the dA / dX update (dA, and with dropout or without spare columns the rank-r dX
// update, from one pass over x). Gradients accumulate in per-thread fp32 buffers that are summed
// at the end.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/lora.h"
#include "tiles.h"

using namespace plora;

namespace {

constexpr int kRows = 4;  // rows of x / dY per register tile

// Adds the per-thread partial sums into out (fp32, rows x cols, leading dimension ld).
void reduce_into(float* out, int64_t ld, int64_t rows, int64_t cols, const std::vector<std::vector<float>>& parts,
                 int64_t part_ld) {
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols * static_cast<int64_t>(parts.size())))
  for (int64_t i = 0; i < rows; ++i)
    for (const auto& part : parts) {
      if (part.empty()) continue;  // a thread that the region did not start (a small call)
      for (int64_t j = 0; j < cols; ++j) out[i * ld + j] += part[i * part_ld + j];
    }
}

}  // namespace

extern "C" {


int plora_cpu_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols, float p,
                           uint64_t seed, uint64_t stream) {
  PLORA_TRY(check_matrix_args("out", out, dtype, ld, rows, cols));
  PLORA_TRY(check_dropout(p));
  const DropoutKeys dropout(p, seed, stream);
  char* base = static_cast<char*>(out);
#pragma omp parallel if (parallel_worth(rows * cols))
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
  const bool parallel = blocks > 1 && parallel_worth(m * k * rp);  // multiply-adds; one block: one thread

#pragma omp parallel if (parallel)
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


int plora_cpu_dy_pass(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, const void* ss,
                      int64_t ld_ss, void* ds, int64_t ld_ds, float* db, int64_t ld_db, int dtype,
                      int64_t m, int64_t n, int64_t r, float scaling) {
  PLORA_TRY(check_dy_pass_args(dy, ld_dy, b, ld_b, ss, ld_ss, ds, ld_ds, db, ld_db, dtype, m, n, r));
  if (m == 0 || r == 0) return ok();  // n == 0 still writes ds = 0, the empty sum

  // 16 columns of r per tile: 8 independent accumulators hide the FMA latency.
  const int64_t rp = round_up(r, 16);
  const std::vector<float> bp = pack_f32(b, dtype, ld_b, n, r, rp, false);     // [n, rp]
  const std::vector<float> ssp = pack_f32(ss, dtype, ld_ss, m, r, rp, false);  // [m, rp]
  const int threads = omp_get_max_threads();
  std::vector<std::vector<float>> db_parts(static_cast<size_t>(threads));
  const int64_t blocks = (m + kRows - 1) / kRows;
  char* ds_base = static_cast<char*>(ds);

  const bool parallel = blocks > 1 && parallel_worth(2 * m * n * rp);  // multiply-adds of dS and dB

#pragma omp parallel num_threads(threads) if (parallel)
  {
    std::vector<float>& dbl = db_parts[static_cast<size_t>(omp_get_thread_num())];
    dbl.assign(static_cast<size_t>(n * rp), 0.0f);
    std::vector<float> buffers(static_cast<size_t>(kRows * n));
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kRows;
      const int rows = static_cast<int>(m - i0 < kRows ? m - i0 : kRows);
      const float* dyr[kRows];
      for (int i = 0; i < kRows; ++i)  // a short block repeats its first row with weight 0
        dyr[i] = f32_row(dy, dtype, ld_dy, i0 + (i < rows ? i : 0), n, buffers.data() + i * n);
      for (int64_t j0 = 0; j0 < rp; j0 += 16) {
        // ds[i, j0:j0+16] = scaling * sum_t dy[i,t] * B[t, j0:j0+16]
        v8 acc[kRows][2] = {};
        for (int64_t t = 0; t < n; ++t) {
          const float* bt = bp.data() + t * rp + j0;
          const v8 b0 = v8_load(bt), b1 = v8_load(bt + 8);
          for (int i = 0; i < kRows; ++i) {
            const v8 d = v8_splat(dyr[i][t]);
            acc[i][0] += d * b0;
            acc[i][1] += d * b1;
          }
        }
        for (int i = 0; i < rows; ++i) {
          void* row = ds_base + (i0 + i) * ld_ds * dtype_size(dtype);
          for (int c = 0; c < 16 && j0 + c < r; ++c) store_f32(row, dtype, j0 + c, scaling * acc[i][c / 8][c % 8]);
        }
        // dB[t, j0:j0+16] += sum_i dy[i,t] * ss[i, j0:j0+16]
        v8 sv[kRows][2];
        for (int i = 0; i < kRows; ++i) {
          const float* si = ssp.data() + (i0 + i) * rp + j0;
          sv[i][0] = i < rows ? v8_load(si) : v8_splat(0.0f);
          sv[i][1] = i < rows ? v8_load(si + 8) : v8_splat(0.0f);
        }
        for (int64_t t = 0; t < n; ++t) {
          float* dt = dbl.data() + t * rp + j0;
          v8 d0 = v8_load(dt), d1 = v8_load(dt + 8);
          for (int i = 0; i < kRows; ++i) {
            const v8 d = v8_splat(dyr[i][t]);
            d0 += d * sv[i][0];
            d1 += d * sv[i][1];
          }
          v8_store(dt, d0);
          v8_store(dt + 8, d1);
        }
      }
    }
  }
  reduce_into(db, ld_db, n, r, db_parts, rp);
  return ok();
}

int plora_cpu_da_dx(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a,
                    int64_t ld_a, float* da, int64_t ld_da, void* dx, int64_t ld_dx, int dtype,
                    int64_t m, int64_t k, int64_t r, float p, uint64_t seed, uint64_t stream) {
  PLORA_TRY(check_da_dx_args(x, ld_x, ds, ld_ds, a, ld_a, da, ld_da, dx, ld_dx, dtype, m, k, r, p));
  if (m == 0 || k == 0 || r == 0) return ok();

  // Rows of the per-thread dA are padded off multiples of 4 KiB: the dA loop walks down its
  // rows, and equal strides of 4 KiB would all fall into one L1 set.
  const int64_t kp = round_up(k, 16) + 16;
  const std::vector<float> dsp = pack_f32(ds, dtype, ld_ds, m, r, r, false);  // [m, r]
  const Panels ap(a, dtype, ld_a, dx != nullptr ? r : 0, dx != nullptr ? k : 0);
  const DropoutKeys dropout(p, seed, stream);
  const int threads = omp_get_max_threads();
  std::vector<std::vector<float>> da_parts(static_cast<size_t>(threads));
  const int64_t blocks = (m + kRows - 1) / kRows;

  const bool parallel = blocks > 1 && parallel_worth((dx != nullptr ? 2 : 1) * m * k * r);  // of dA (and dX)

#pragma omp parallel num_threads(threads) if (parallel)
  {
    std::vector<float>& dal = da_parts[static_cast<size_t>(omp_get_thread_num())];
    dal.assign(static_cast<size_t>(r * kp), 0.0f);
    std::vector<float> buffers(static_cast<size_t>(kRows * kp), 0.0f);
    // the dropout factors of the block's rows, kept for the dX update (without dropout it takes none)
    const bool keep_factors = dx != nullptr && dropout.active();
    std::vector<float> factors(keep_factors ? static_cast<size_t>(kRows * kp) : 0u, 0.0f);
    std::vector<float> coef(static_cast<size_t>(kTileRows * r));
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t i0 = blk * kRows;
      const int rows = static_cast<int>(m - i0 < kRows ? m - i0 : kRows);
      const float* xr[kRows];
      for (int i = 0; i < kRows; ++i)
        xr[i] = dropped_row(x, dtype, ld_x, i0 + (i < rows ? i : 0), k, dropout, buffers.data() + i * kp,
                            keep_factors ? factors.data() + i * kp : nullptr);
      // dA[j, :] += sum_i ds[i, j] * xt[i, :]; rows past the end of a short block get weight 0.
      // Tiles of 16 columns of x stay in registers while all r rows of dA pass over them.
      float w[kRows][64];
      for (int64_t j0 = 0; j0 < r; j0 += 64) {
        const int64_t jn = r - j0 < 64 ? r - j0 : 64;
        for (int i = 0; i < kRows; ++i)
          for (int64_t j = 0; j < jn; ++j) w[i][j] = i < rows ? dsp[(i0 + i) * r + j0 + j] : 0.0f;
        int64_t t = 0;
        for (; t + 16 <= k; t += 16) {
          v8 xv[kRows][2];
          for (int i = 0; i < kRows; ++i) {
            xv[i][0] = v8_load(xr[i] + t);
            xv[i][1] = v8_load(xr[i] + t + 8);
          }
          for (int64_t j = 0; j < jn; ++j) {
            float* drow = dal.data() + (j0 + j) * kp + t;
            v8 a0 = v8_load(drow), a1 = v8_load(drow + 8);
            for (int i = 0; i < kRows; ++i) {
              const v8 wi = v8_splat(w[i][j]);
              a0 += wi * xv[i][0];
              a1 += wi * xv[i][1];
            }
            v8_store(drow, a0);
            v8_store(drow + 8, a1);
          }
        }
        for (; t < k; ++t)
          for (int64_t j = 0; j < jn; ++j)
            for (int i = 0; i < kRows; ++i) dal[(j0 + j) * kp + t] += w[i][j] * xr[i][t];
      }
      if (dx == nullptr) continue;
      // dX[i, :] += factor[i, :] * sum_j ds[i, j] * A[j, :] (factors: the dropout mask, 1 without)
      static_assert(kRows == kTileRows, "the dX update takes the block's rows together");
      void* dx_rows[kTileRows];
      const float* row_factors[kTileRows];
      const unsigned char* no_bits[kTileRows] = {};
      for (int i = 0; i < kTileRows; ++i) {
        for (int64_t j = 0; j < r; ++j) coef[i * r + j] = i < rows ? dsp[(i0 + i) * r + j] : 0.0f;
        dx_rows[i] = i < rows ? static_cast<char*>(dx) + (i0 + i) * ld_dx * dtype_size(dtype) : nullptr;
        row_factors[i] = keep_factors ? factors.data() + i * kp : nullptr;
      }
      add_rank_r_update(dtype, dx_rows, keep_factors ? row_factors : nullptr, no_bits, rows, k, ap, coef.data(), r);
    }
  }
  reduce_into(da, ld_da, r, k, da_parts, kp);
  return ok();
}

}  // extern "C"
