// In-place merge on the host: W += c * B * A with fp32 accumulation, stochastic or nearest
// rounding into 16-bit W, then A and B scaled (PLoRA's momentum unloading) in the same call.
#include <omp.h>

#include <vector>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/merge.h"
#include "tiles.h"

using namespace plora;

namespace {

void scale_matrix(void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, float factor) {
  if (factor == 1.0f) return;
#pragma omp parallel for schedule(static) if (parallel_worth(rows * cols))
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
    const Panels ap(a, ab_dtype, ld_a, r, k);
    const std::vector<float> bp = pack_f32(b, ab_dtype, ld_b, n, r, r, false);  // [n, r]
    const int64_t row_bytes = ld_w * dtype_size(w_dtype), blocks = (n + kTileRows - 1) / kTileRows;
#pragma omp parallel if (parallel_worth(n * k * r))  // multiply-adds
    {
      std::vector<float> cb(static_cast<size_t>(kTileRows * r));
      // stochastic rounding: each row's random words
      const size_t row_words = stochastic ? static_cast<size_t>(k / 2 + 2) : 0u;
      std::vector<uint32_t> words(kTileRows * row_words);
      void* rows[kTileRows];
      const unsigned char* bits[kTileRows] = {};
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t i0 = blk * kTileRows;
        const int nr = static_cast<int>(n - i0 < kTileRows ? n - i0 : kTileRows);
        for (int i = 0; i < kTileRows; ++i)  // c·B for this block; rows past the end get 0
          for (int64_t j = 0; j < r; ++j) cb[i * r + j] = i < nr ? c * bp[(i0 + i) * r + j] : 0.0f;
        for (int i = 0; i < nr; ++i) {
          rows[i] = static_cast<char*>(w) + (i0 + i) * row_bytes;
          if (!stochastic) continue;
          // rounding_bits(e) is half (e % 2) of word e / 2: draw the row's words once
          const uint64_t e0 = static_cast<uint64_t>((i0 + i) * k);
          const uint64_t first_word = e0 >> 1, last_word = (e0 + k - 1) >> 1;
          const int64_t count = static_cast<int64_t>(last_word - first_word + 1);
          uint32_t* row_random = words.data() + i * row_words;
          philox_words(seed, stream, first_word, count, row_random);
          // little-endian: element e's bits are half e - 2·first_word of the row's words
          bits[i] = reinterpret_cast<const unsigned char*>(row_random) + 2 * (e0 - 2 * first_word);
        }
        if (stochastic) add_rank_r_update<Bf16Rows<true>>(rows, nullptr, bits, nr, k, ap, cb.data(), r);
        else add_rank_r_update(w_dtype, rows, nullptr, bits, nr, k, ap, cb.data(), r);
      }
    }
  }
  scale_matrix(a, ab_dtype, ld_a, r, k, scale_a);
  scale_matrix(b, ab_dtype, ld_b, n, r, scale_b);
  return ok();
}

}  // extern "C"
