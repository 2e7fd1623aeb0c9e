// Rows of a matrix plus a rank-r product, tiled: rows[i, :] += factor[i, :] * sum_j coef[i, j] * A[j, :]
// with fp32 accumulation, for every storage type of the rows. The merge (W += c·B·A) and the dX
// update of the LoRA backward (dX += mask ⊙ dS·A) are both this.
#ifndef PLORA_CPU_TILES_H
#define PLORA_CPU_TILES_H

#include <cstring>
#include <vector>

#include "rows.h"

namespace plora {

constexpr int kTileRows = 4;  // rows updated together: each panel load feeds all of them

// Storage types of the updated rows, eight fp32 values at a time and one at a time. `bits` points
// at the row's random bits (rounding_bits: element t's 16 bits at bytes 2t, 2t + 1); only
// stochastic rounding reads them.
struct F32Rows {
  static v8 load(const void* row, int64_t t) { return v8_load(static_cast<const float*>(row) + t); }
  static void store(void* row, int64_t t, v8 x, const unsigned char*) { v8_store(static_cast<float*>(row) + t, x); }
  static float load1(const void* row, int64_t t) { return static_cast<const float*>(row)[t]; }
  static void store1(void* row, int64_t t, float x, const unsigned char*) { static_cast<float*>(row)[t] = x; }
};

template <bool Stochastic>
struct Bf16Rows {
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

struct F16Rows {
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

// A [r, k] in panels of eight columns, each panel's r rows of eight contiguous: a tile of the update
// then reads its panels front to back, streams the prefetcher follows, instead of r strided rows.
// Panels are padded by 64 bytes so that a tile's panels never sit 4 KiB apart (one L1 set).
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

// acc[i][q] = sum over j of coef[i, j] * A[j, t + 8q ..], j in order with fused multiply-adds (the
// order the tests replay). Tiles of Q vectors: each broadcast of a coefficient feeds Q FMAs.
template <int Q>
inline void update_tile(const Panels& a, const float* coef, int64_t r, int64_t t, v8 (&acc)[kTileRows][Q]) {
  for (int i = 0; i < kTileRows; ++i)
    for (int q = 0; q < Q; ++q) acc[i][q] = v8{};
  const float* panel = a.at(t);
  for (int64_t j = 0; j < r; ++j) {
    v8 aj[Q];
    for (int q = 0; q < Q; ++q) aj[q] = v8_load(panel + q * a.stride + 8 * j);
    for (int i = 0; i < kTileRows; ++i) {
      const v8 cij = v8_splat(coef[i * r + j]);
      for (int q = 0; q < Q; ++q) acc[i][q] += cij * aj[q];
    }
  }
}

// rows[0 .. nr) (k columns of type R) += factors ⊙ their update (coef: [kTileRows, r], zero for
// rows past nr), rounded once, in one pass: each tile of a row is read, updated and written while
// its cache lines are hot. `factors` may be null (all ones); `bits` is for stochastic rounding.
template <class R>
void add_rank_r_update(void* const* rows, const float* const* factors, const unsigned char* const* bits, int nr,
                       int64_t k, const Panels& a, const float* coef, int64_t r) {
  auto scaled = [&](int i, int64_t t, v8 acc) { return factors ? v8_load(factors[i] + t) * acc : acc; };
  int64_t t = 0;
  for (; t + 24 <= k; t += 24) {  // 12 accumulators
    v8 acc[kTileRows][3];
    update_tile<3>(a, coef, r, t, acc);
    for (int i = 0; i < nr; ++i)
      for (int q = 0; q < 3; ++q)
        R::store(rows[i], t + 8 * q, R::load(rows[i], t + 8 * q) + scaled(i, t + 8 * q, acc[i][q]), bits[i]);
  }
  for (; t < k; t += 8) {  // the last panel is zero-padded past k
    v8 acc[kTileRows][1];
    update_tile<1>(a, coef, r, t, acc);
    for (int i = 0; i < nr; ++i) {
      if (t + 8 <= k) {
        R::store(rows[i], t, R::load(rows[i], t) + scaled(i, t, acc[i][0]), bits[i]);
        continue;
      }
      for (int64_t l = 0; l < k - t; ++l) {
        const float update = factors ? factors[i][t + l] * acc[i][0][l] : acc[i][0][l];
        R::store1(rows[i], t + l, R::load1(rows[i], t + l) + update, bits[i]);
      }
    }
  }
}

// The same for rows of any dtype, rounded to nearest (bf16 stochastic rounding: Bf16Rows<true>).
inline void add_rank_r_update(int dtype, void* const* rows, const float* const* factors,
                              const unsigned char* const* bits, int nr, int64_t k, const Panels& a, const float* coef,
                              int64_t r) {
  if (dtype == PLORA_F32) add_rank_r_update<F32Rows>(rows, factors, bits, nr, k, a, coef, r);
  else if (dtype == PLORA_BF16) add_rank_r_update<Bf16Rows<false>>(rows, factors, bits, nr, k, a, coef, r);
  else add_rank_r_update<F16Rows>(rows, factors, bits, nr, k, a, coef, r);
}

}  // namespace plora

#endif
