// In-place merge on the host: W += c * B * A with fp32 accumulation, stochastic or nearest
// rounding into 16-bit W, then A and B scaled (PLoRA's momentum unloading) in the same call.
#include <omp.h>

#include <vector>

#include "../common/checks.h"
#include "plora/cpu.h"
#include "rows.h"

using namespace plora;

namespace {

void scale_matrix(void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, float factor) {
  if (factor == 1.0f) return;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < rows; ++i) {
    char* row = static_cast<char*>(x) + i * ld * dtype_size(dtype);
    for (int64_t j = 0; j < cols; ++j) store_f32(row, dtype, j, factor * load_f32(row, dtype, j));
  }
}

}  // namespace

extern "C" {

int plora_cpu_merge(void* w, int w_dtype, int64_t ld_w, void* b, int64_t ld_b, void* a, int64_t ld_a,
                    int ab_dtype, int64_t n, int64_t k, int64_t r, float c, int rounding, uint64_t seed,
                    uint64_t stream, float scale_a, float scale_b) {
  PLORA_TRY(check_dtype("w", w_dtype));
  PLORA_TRY(check_dtype("a/b", ab_dtype));
  PLORA_TRY(check_matrix("w", w, ld_w, n, k));
  PLORA_TRY(check_matrix("b", b, ld_b, n, r));
  PLORA_TRY(check_matrix("a", a, ld_a, r, k));
  if (rounding != PLORA_ROUND_NEAREST && rounding != PLORA_ROUND_STOCHASTIC)
    return fail(PLORA_ERR_INVALID, "unknown rounding %d", rounding);
  const bool stochastic = rounding == PLORA_ROUND_STOCHASTIC && w_dtype == PLORA_BF16;

  if (n > 0 && k > 0 && r > 0) {
    const int64_t kp = round_up(k, 8);
    const std::vector<float> ap = pack_f32(a, ab_dtype, ld_a, r, k, kp, false);  // [r, kp]
    const std::vector<float> bp = pack_f32(b, ab_dtype, ld_b, n, r, r, false);   // [n, r]
#pragma omp parallel
    {
      std::vector<float> update(static_cast<size_t>(kp));
      std::vector<uint32_t> random(stochastic ? static_cast<size_t>(k) : 0u);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; ++i) {
        for (int64_t t = 0; t < kp; t += 8) v8_store(update.data() + t, v8_splat(0.0f));
        for (int64_t j = 0; j < r; ++j) {
          const v8 bij = v8_splat(c * bp[i * r + j]);
          const float* arow = ap.data() + j * kp;
          for (int64_t t = 0; t < kp; t += 8)
            v8_store(update.data() + t, v8_load(update.data() + t) + bij * v8_load(arow + t));
        }
        char* wrow = static_cast<char*>(w) + i * ld_w * dtype_size(w_dtype);
        if (stochastic) {
          philox_words(seed, stream, static_cast<uint64_t>(i * k), k, random.data());
          uint16_t* w16 = reinterpret_cast<uint16_t*>(wrow);
          for (int64_t t = 0; t < k; ++t)
            w16[t] = f32_to_bf16_stochastic(bf16_to_f32(w16[t]) + update[t], random[t]);
        } else {
          for (int64_t t = 0; t < k; ++t) store_f32(wrow, w_dtype, t, load_f32(wrow, w_dtype, t) + update[t]);
        }
      }
    }
  }
  scale_matrix(a, ab_dtype, ld_a, r, k, scale_a);
  scale_matrix(b, ab_dtype, ld_b, n, r, scale_b);
  return ok();
}

}  // extern "C"
