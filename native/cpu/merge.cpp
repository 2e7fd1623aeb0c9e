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

// W's storage types, eight fp32 values at a time and one at a time. `bits` points at the row's
// random bits (rounding_bits: element t's 16 bits at bytes 2t, 2t + 1); only stochastic rounding
// reads them.
struct F32W {
  static v8 load(const void* row, int64_t t) { return v8_load(static_cast<const float*>(row) + t); }
  static void store(void* row, int64_t t, v8 x, const unsigned char*) { v8_store(static_cast<float*>(row) + t, x); }
  static float load1(const void* row, int64_t t) { return static_cast<const float*>(row)[t]; }
  static void store1(void* row, int64_t t, float x, const unsigned char*) { static_cast<float*>(row)[t] = x; }
};

template <bool Stochastic>
struct Bf16W {
  static v8 load(const void* row, int64_t t) { return bf16x8_load(static_cast<const uint16_t*>(row) + t); }
  static void store(void* row, int64_t t, v8 x, const unsigned char* bits) {
    uint16_t* p = static_cast<uint16_t*>(row) + t;
    if (Stochastic) bf16x8_store_stochastic(p, x, bits + 2 * t);
    else bf16x8_store(p, x);
  }
  static float load1(const void* row, int64_t t) { return bf16_to_f32(static_cast<const uint16_t*>(row)[t]); }
  static void store1(void* row, int64_t t, float x, const unsigned char* bits) {
    uint16_t random = 0;
    if (Stochastic) std::memcpy(&random, bits + 2 * t, sizeof random);
    static_cast<uint16_t*>(row)[t] = Stochastic ? f32_to_bf16_stochastic(x, random) : f32_to_bf16(x);
  }
};

struct F16W {
  static v8 load(const void* row, int64_t t) {
    v8 x;
    for (int l = 0; l < 8; ++l) x[l] = load1(row, t + l);
    return x;
  }
  static void store(void* row, int64_t t, v8 x, const unsigned char* bits) {
    for (int l = 0; l < 8; ++l) store1(row, t + l, x[l], bits);
  }
  static float load1(const void* row, int64_t t) { return f16_to_f32(static_cast<const uint16_t*>(row)[t]); }
  static void store1(void* row, int64_t t, float x, const unsigned char*) { static_cast<uint16_t*>(row)[t] = f32_to_f16(x); }
};

// A in panels of eight columns, each panel's r rows of eight contiguous: a tile of the update then
// reads its Q panels front to back, Q streams the prefetcher follows, instead of r strided rows.
// Panels are padded by 64 bytes so that Q panels never sit 4 KiB apart (one L1 set).
struct Panels {
  std::vector<float> data;
  int64_t stride;  // floats from one panel to the next

  Panels(const void* a, int dtype, int64_t ld, int64_t r, int64_t k) : stride(8 * r + 16) {
    data.assign(static_cast<size_t>((k + 7) / 8 * stride), 0.0f);
    for (int64_t j = 0; j < r; ++j) {
      const char* row = static_cast<const char*>(a) + j * ld * dtype_size(dtype);
      for (int64_t t = 0; t < k; ++t) data[(t / 8) * stride + j * 8 + t % 8] = load_f32(row, dtype, t);
    }
  }

  const float* at(int64_t t) const { return data.data() + (t / 8) * stride; }  // t: a multiple of 8
};

// acc[i][q] = sum over j of cb[i, j] * A[j, t + 8q ..], j in order with fused multiply-adds (the
// order the tests replay). Tiles of Q vectors: each broadcast of c·B feeds Q FMAs.
template <int Q>
inline void update_tile(const Panels& a, const float* cb, int64_t r, int64_t t, v8 (&acc)[kRows][Q]) {
  for (int i = 0; i < kRows; ++i)
    for (int q = 0; q < Q; ++q) acc[i][q] = v8{};
  const float* panel = a.at(t);
  for (int64_t j = 0; j < r; ++j) {
    v8 aj[Q];
    for (int q = 0; q < Q; ++q) aj[q] = v8_load(panel + q * a.stride + 8 * j);
    for (int i = 0; i < kRows; ++i) {
      const v8 bij = v8_splat(cb[i * r + j]);
      for (int q = 0; q < Q; ++q) acc[i][q] += bij * aj[q];
    }
  }
}

// Rows rows[0 .. nr) of W += their update, rounded once, in one pass: each tile of W is read,
// updated and written while its cache lines are hot.
template <class W>
void merge_rows(void* const* rows, const unsigned char* const* bits, int nr, int64_t k, const Panels& a, const float* cb,
                int64_t r) {
  int64_t t = 0;
  for (; t + 24 <= k; t += 24) {  // 12 accumulators
    v8 acc[kRows][3];
    update_tile<3>(a, cb, r, t, acc);
    for (int i = 0; i < nr; ++i)
      for (int q = 0; q < 3; ++q) W::store(rows[i], t + 8 * q, W::load(rows[i], t + 8 * q) + acc[i][q], bits[i]);
  }
  for (; t < k; t += 8) {  // the last panel is zero-padded past k
    v8 acc[kRows][1];
    update_tile<1>(a, cb, r, t, acc);
    for (int i = 0; i < nr; ++i) {
      if (t + 8 <= k) {
        W::store(rows[i], t, W::load(rows[i], t) + acc[i][0], bits[i]);
        continue;
      }
      for (int64_t l = 0; l < k - t; ++l) W::store1(rows[i], t + l, W::load1(rows[i], t + l) + acc[i][0][l], bits[i]);
    }
  }
}

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
    const Panels ap(a, ab_dtype, ld_a, r, k);
    const std::vector<float> bp = pack_f32(b, ab_dtype, ld_b, n, r, r, false);   // [n, r]
    const int64_t row_bytes = ld_w * dtype_size(w_dtype), blocks = (n + kRows - 1) / kRows;
#pragma omp parallel
    {
      std::vector<float> cb(static_cast<size_t>(kRows * r));
      // stochastic rounding: each row's random words
      const size_t row_words = stochastic ? static_cast<size_t>(k / 2 + 2) : 0u;
      std::vector<uint32_t> words(kRows * row_words);
      void* rows[kRows];
      const unsigned char* bits[kRows] = {};
#pragma omp for schedule(static)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t i0 = blk * kRows;
        const int nr = static_cast<int>(n - i0 < kRows ? n - i0 : kRows);
        for (int i = 0; i < kRows; ++i)  // c·B for this block; rows past the end get 0
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
        if (stochastic) merge_rows<Bf16W<true>>(rows, bits, nr, k, ap, cb.data(), r);
        else if (w_dtype == PLORA_F32) merge_rows<F32W>(rows, bits, nr, k, ap, cb.data(), r);
        else if (w_dtype == PLORA_BF16) merge_rows<Bf16W<false>>(rows, bits, nr, k, ap, cb.data(), r);
        else merge_rows<F16W>(rows, bits, nr, k, ap, cb.data(), r);
      }
    }
  }
  scale_matrix(a, ab_dtype, ld_a, r, k, scale_a);
  scale_matrix(b, ab_dtype, ld_b, n, r, scale_b);
  return ok();
}

}  // extern "C"
