// LoRA shrink on the host: out = scaling * (x * mask / (1-p)) * A^T, dropout fused.
#include <omp.h>

#include <vector>

#include "../common/checks.h"
#include "plora/cpu.h"
#include "plora/philox.h"

using namespace plora;

namespace {

// Row m of x, dropout applied, in fp32. The element index m*k + j keys the Philox draw, so the
// mask depends only on the logical position, never on the leading dimension or the device.
void load_dropped_row(const void* x, int dtype, int64_t ld_x, int64_t m, int64_t k, float keep_scale,
                      uint32_t threshold, uint64_t seed, uint64_t stream, float* row) {
  const char* base = static_cast<const char*>(x) + m * ld_x * dtype_size(dtype);
  for (int64_t j = 0; j < k; ++j) {
    float v = load_f32(base, dtype, j);
    if (threshold != 0u)
      v = dropout_keep(seed, stream, static_cast<uint64_t>(m * k + j), threshold) ? v * keep_scale : 0.0f;
    row[j] = v;
  }
}

}  // namespace

extern "C" {

int plora_cpu_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols, float p,
                           uint64_t seed, uint64_t stream) {
  PLORA_TRY(check_dtype("out", dtype));
  PLORA_TRY(check_matrix("out", out, ld, rows, cols));
  PLORA_TRY(check_dropout(p));
  const uint32_t threshold = dropout_threshold(p);
  const float keep_scale = 1.0f / (1.0f - p);
  char* base = static_cast<char*>(out);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    void* row = base + i * ld * dtype_size(dtype);
    for (int64_t j = 0; j < cols; ++j) {
      bool keep = dropout_keep(seed, stream, static_cast<uint64_t>(i * cols + j), threshold);
      store_f32(row, dtype, j, keep ? keep_scale : 0.0f);
    }
  }
  return ok();
}

int plora_cpu_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out,
                     int64_t ld_out, int dtype, int64_t m, int64_t k, int64_t r, float scaling,
                     float p, uint64_t seed, uint64_t stream) {
  PLORA_TRY(check_dtype("dtype", dtype));
  PLORA_TRY(check_matrix("x", x, ld_x, m, k));
  PLORA_TRY(check_matrix("a", a, ld_a, r, k));
  PLORA_TRY(check_matrix("out", out, ld_out, m, r));
  PLORA_TRY(check_dropout(p));
  if (m == 0 || r == 0) return ok();

  // A in fp32, contiguous: r*k is small next to m*k, and the inner loop then vectorises.
  std::vector<float> a32(static_cast<size_t>(r * k));
  for (int64_t j = 0; j < r; ++j) {
    const char* row = static_cast<const char*>(a) + j * ld_a * dtype_size(dtype);
    for (int64_t i = 0; i < k; ++i) a32[j * k + i] = load_f32(row, dtype, i);
  }
  const uint32_t threshold = dropout_threshold(p);
  const float keep_scale = 1.0f / (1.0f - p);
  char* out_base = static_cast<char*>(out);

#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(k));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < m; ++i) {
      load_dropped_row(x, dtype, ld_x, i, k, keep_scale, threshold, seed, stream, row.data());
      void* out_row = out_base + i * ld_out * dtype_size(dtype);
      for (int64_t j = 0; j < r; ++j) {
        const float* aj = a32.data() + j * k;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t t = 0; t < k; ++t) acc += row[t] * aj[t];
        store_f32(out_row, dtype, j, scaling * acc);
      }
    }
  }
  return ok();
}

}  // extern "C"
