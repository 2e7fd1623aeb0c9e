// Runs of eight consecutive elements of a row, the unit of the bandwidth-bound kernels (merge,
// GELU, random fills, dropout masks): one thread loads, computes and stores a run, a warp 256
// consecutive elements. A run is moved in 16-byte accesses (two for F32, one for BF16 and F16)
// when the caller has checked that every run starts 16-byte aligned (aligned_rows) and the run
// is whole; otherwise one element at a time, so that any offset and leading dimension work.
#ifndef PLORA_CUDA_RUNS_CUH
#define PLORA_CUDA_RUNS_CUH

#include <cuda_runtime.h>

#include <cstdint>

#include "plora/numerics.h"
#include "plora/philox.h"

namespace plora {

constexpr int kRun = 8;

// Whether every run of a matrix (runs start at columns that are multiples of kRun) is 16-byte
// aligned: the base and the row stride both multiples of 16 bytes.
inline bool aligned_rows(const void* base, int64_t ld, int dtype) {
  return reinterpret_cast<uintptr_t>(base) % 16 == 0 && (ld * dtype_size(dtype)) % 16 == 0;
}

// The elements [e, e + kRun) of base as fp32; elements at or past `end` read as 0 and are not
// touched.
__device__ __forceinline__ void load_run8(const void* base, int dtype, int64_t e, int64_t end, bool vector,
                                          float (&v)[kRun]) {
  if (vector && e + kRun <= end) {
    if (dtype == PLORA_F32) {
      const uint4* p = reinterpret_cast<const uint4*>(static_cast<const float*>(base) + e);
      const uint4 lo = p[0], hi = p[1];
      const unsigned w[kRun] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
      for (int q = 0; q < kRun; ++q) v[q] = __uint_as_float(w[q]);
    } else {
      const uint4 u = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(base) + e);
      const unsigned w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
      for (int q = 0; q < kRun; ++q) {
        const uint16_t h = static_cast<uint16_t>(w[q / 2] >> (16 * (q % 2)));
        v[q] = dtype == PLORA_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
    }
    return;
  }
#pragma unroll
  for (int q = 0; q < kRun; ++q) v[q] = e + q < end ? load_f32(base, dtype, e + q) : 0.0f;
}

// The 16-bit elements [e, min(e + kRun, end)) of base.
__device__ __forceinline__ void store_run16(uint16_t* base, int64_t e, int64_t end, bool vector,
                                            const uint16_t (&h)[kRun]) {
  if (vector && e + kRun <= end) {
    uint4 u;
    u.x = h[0] | static_cast<unsigned>(h[1]) << 16;
    u.y = h[2] | static_cast<unsigned>(h[3]) << 16;
    u.z = h[4] | static_cast<unsigned>(h[5]) << 16;
    u.w = h[6] | static_cast<unsigned>(h[7]) << 16;
    *reinterpret_cast<uint4*>(base + e) = u;
    return;
  }
#pragma unroll
  for (int q = 0; q < kRun; ++q)
    if (e + q < end) base[e + q] = h[q];
}

// The elements [e, min(e + kRun, end)) of base from v, rounded to nearest in dtype.
__device__ __forceinline__ void store_run8(void* base, int dtype, int64_t e, int64_t end, bool vector,
                                           const float (&v)[kRun]) {
  if (dtype != PLORA_F32) {
    uint16_t h[kRun];
#pragma unroll
    for (int q = 0; q < kRun; ++q) h[q] = dtype == PLORA_BF16 ? f32_to_bf16(v[q]) : f32_to_f16(v[q]);
    store_run16(static_cast<uint16_t*>(base), e, end, vector, h);
    return;
  }
  float* f = static_cast<float*>(base);
  if (vector && e + kRun <= end) {
    uint4* p = reinterpret_cast<uint4*>(f + e);
    p[0] = uint4{__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]), __float_as_uint(v[3])};
    p[1] = uint4{__float_as_uint(v[4]), __float_as_uint(v[5]), __float_as_uint(v[6]), __float_as_uint(v[7])};
    return;
  }
#pragma unroll
  for (int q = 0; q < kRun; ++q)
    if (e + q < end) f[e + q] = v[q];
}

// The runs of a rows x cols matrix, row by row: run `run` is row run / per_row, columns from
// kRun * (run % per_row).
struct RunGrid {
  int64_t per_row, count;
  RunGrid(int64_t rows, int64_t cols) : per_row((cols + kRun - 1) / kRun), count(rows * per_row) {}
};

// The words philox_word(seed, stream, e0 + q) for q < kN (a multiple of 4): kN / 4 Philox blocks
// when e0 is a multiple of 4, each word taken by its constant index; one block more otherwise, the
// words selected (never indexed at run time: the blocks stay in registers).
template <int kN>
__device__ __forceinline__ void philox_run_words(uint64_t seed, uint64_t stream, uint64_t e0, uint32_t (&w)[kN]) {
  static_assert(kN % 4 == 0, "whole blocks");
  constexpr int kBlocks = kN / 4;
  Philox4 p[kBlocks + 1];
#pragma unroll
  for (int m = 0; m < kBlocks; ++m) p[m] = philox_block(seed, stream, (e0 >> 2) + m);
  const unsigned o = static_cast<unsigned>(e0 & 3);
  if (o == 0) {
#pragma unroll
    for (int q = 0; q < kN; ++q) w[q] = p[q / 4].v[q % 4];
    return;
  }
  p[kBlocks] = philox_block(seed, stream, (e0 >> 2) + kBlocks);
#pragma unroll
  for (int q = 0; q < kN; ++q) {
    const unsigned s = o + q;  // word s of the blocks' concatenation
    uint32_t x = p[0].v[0];
#pragma unroll
    for (int c = 1; c < 4 * (kBlocks + 1); ++c) x = s == static_cast<unsigned>(c) ? p[c / 4].v[c % 4] : x;
    w[q] = x;
  }
}

}  // namespace plora

#endif
