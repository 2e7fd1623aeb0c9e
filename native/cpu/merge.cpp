// In-place merge on the host: W += c * B * A with fp32 accumulation, stochastic or nearest
// rounding into 16-bit W, then A and B scaled (PLoRA's momentum unloading) in the same call.
#include <omp.h>

#include <cstring>
#include <vector>

#include "../common/contracts.h"
#include "plora/cpu.h"
#include "rows.h"

using namespace plora;

namespace {

constexpr int kRows = 4;  // rows of W per block

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
  PLORA_TRY(check_merge_args(w, w_dtype, ld_w, b, ld_b, a, ld_a, ab_dtype, n, k, r, rounding));
  const bool stochastic = rounding == PLORA_ROUND_STOCHASTIC && w_dtype == PLORA_BF16;

  if (n > 0 && k > 0 && r > 0) {
    // A's packed rows are padded off multiples of 4 KiB: the inner loop reads all r rows at one
    // column, and equal 4 KiB strides would all fall into one L1 set (3x slower at r = 16).
    const int64_t kp = round_up(k, 8) + 16;
    const std::vector<float> ap = pack_f32(a, ab_dtype, ld_a, r, k, kp, false);  // [r, kp]
    const std::vector<float> bp = pack_f32(b, ab_dtype, ld_b, n, r, r, false);   // [n, r]
    const int64_t blocks = (n + kRows - 1) / kRows;
#pragma omp parallel
    {
      // kRows rows of W at a time in fp32, so each row of A is loaded once per block
      std::vector<float> rows(static_cast<size_t>(kRows * kp), 0.0f);
      std::vector<float> cb(static_cast<size_t>(kRows * r));
      std::vector<uint32_t> random(stochastic ? static_cast<size_t>(k / 2 + 2) : 0u);
      std::vector<uint16_t> halves(2 * random.size());
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t i0 = blk * kRows;
        const int nr = static_cast<int>(n - i0 < kRows ? n - i0 : kRows);
        for (int i = 0; i < nr; ++i) {
          const char* wrow = static_cast<const char*>(w) + (i0 + i) * ld_w * dtype_size(w_dtype);
          float* dst = rows.data() + i * kp;
          if (w_dtype == PLORA_F32) {
            std::memcpy(dst, wrow, static_cast<size_t>(k) * sizeof(float));
          } else if (w_dtype == PLORA_BF16) {
            const uint16_t* src = reinterpret_cast<const uint16_t*>(wrow);
            for (int64_t t = 0; t < k; ++t) dst[t] = bf16_to_f32(src[t]);
          } else {
            for (int64_t t = 0; t < k; ++t) dst[t] = load_f32(wrow, w_dtype, t);
          }
        }
        for (int i = 0; i < kRows; ++i)  // c·B for this block; rows past the end get 0
          for (int64_t j = 0; j < r; ++j) cb[i * r + j] = i < nr ? c * bp[(i0 + i) * r + j] : 0.0f;
        // The update first, added to w once (the order the tests replay). Tiles of 24 columns:
        // 12 accumulators, so each broadcast of c·B feeds three FMAs.
        int64_t t = 0;
        for (; t + 24 <= kp; t += 24) {
          v8 acc[kRows][3] = {};
          for (int64_t j = 0; j < r; ++j) {
            const float* aj = ap.data() + j * kp + t;
            const v8 a0 = v8_load(aj), a1 = v8_load(aj + 8), a2 = v8_load(aj + 16);
            for (int i = 0; i < kRows; ++i) {
              const v8 bij = v8_splat(cb[i * r + j]);
              acc[i][0] += bij * a0;
              acc[i][1] += bij * a1;
              acc[i][2] += bij * a2;
            }
          }
          for (int i = 0; i < kRows; ++i)
            for (int q = 0; q < 3; ++q) {
              float* row = rows.data() + i * kp + t + 8 * q;
              v8_store(row, v8_load(row) + acc[i][q]);
            }
        }
        for (; t < kp; t += 8) {
          v8 acc[kRows] = {};
          for (int64_t j = 0; j < r; ++j) {
            const v8 aj = v8_load(ap.data() + j * kp + t);
            for (int i = 0; i < kRows; ++i) acc[i] += v8_splat(cb[i * r + j]) * aj;
          }
          for (int i = 0; i < kRows; ++i) v8_store(rows.data() + i * kp + t, v8_load(rows.data() + i * kp + t) + acc[i]);
        }
        for (int i = 0; i < nr; ++i) {
          char* wrow = static_cast<char*>(w) + (i0 + i) * ld_w * dtype_size(w_dtype);
          const float* src = rows.data() + i * kp;
          if (stochastic) {
            // rounding_bits(e) is half (e % 2) of word e / 2: draw the row's words once
            const uint64_t e0 = static_cast<uint64_t>((i0 + i) * k);
            const uint64_t first_word = e0 >> 1, last_word = (e0 + k - 1) >> 1;
            const int64_t words = static_cast<int64_t>(last_word - first_word + 1);
            philox_words(seed, stream, first_word, words, random.data());
            // Little-endian halves: element e's bits are half (e - 2·first_word) of the row's words.
            std::memcpy(halves.data(), random.data(), static_cast<size_t>(words) * sizeof(uint32_t));
            const uint16_t* bits = halves.data() + (e0 - 2 * first_word);
            uint16_t* w16 = reinterpret_cast<uint16_t*>(wrow);
            for (int64_t t = 0; t < k; ++t) w16[t] = f32_to_bf16_stochastic(src[t], bits[t]);
          } else if (w_dtype == PLORA_F32) {
            std::memcpy(wrow, src, static_cast<size_t>(k) * sizeof(float));
          } else if (w_dtype == PLORA_BF16) {
            uint16_t* w16 = reinterpret_cast<uint16_t*>(wrow);
            for (int64_t t = 0; t < k; ++t) w16[t] = f32_to_bf16(src[t]);
          } else {
            for (int64_t t = 0; t < k; ++t) store_f32(wrow, w_dtype, t, src[t]);
          }
        }
      }
    }
  }
  scale_matrix(a, ab_dtype, ld_a, r, k, scale_a);
  scale_matrix(b, ab_dtype, ld_b, n, r, scale_b);
  return ok();
}

}  // extern "C"
