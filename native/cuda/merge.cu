// In-place merge on the GPU: W += c * B * A with fp32 accumulation, stochastic or nearest
// rounding into 16-bit W, then A and B scaled (PLoRA's momentum unloading) in the same call.
// CPU reference: native/cpu/merge.cpp (same accumulation order, same Philox element indexing).
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/merge.h"
#include "plora/philox.h"

using namespace plora;

namespace {

constexpr int kTileK = 32;                            // w columns per block, one per threadIdx.x
constexpr int kTileN = 32;                            // w rows per block
constexpr int kBlockRows = 8;                         // threadIdx.y
constexpr int kRowsPerThread = kTileN / kBlockRows;  // w elements per thread
constexpr int kRankChunk = 32;                        // rank columns staged in shared memory per pass
constexpr int kThreads = 256;                         // scale kernel
static_assert(kRankChunk == kTileK, "b is staged with threadIdx.x along the rank");

// One block per kTileN x kTileK tile of w (blockIdx.y walks row tiles with a grid stride). The
// rank is consumed in chunks of kRankChunk: the block stages a[j0.., t0..] and c * b[i0.., j0..]
// in shared memory, then each thread updates its kRowsPerThread accumulators (rows ty + q *
// kBlockRows of the tile, column tx). Like the host, each element accumulates
// update = sum_j (c * b[i,j]) * a[j,t] in ascending j with fused multiply-adds, and then
// w = w + update is rounded once into w_dtype.
__global__ void __launch_bounds__(kTileK * kBlockRows)
merge_kernel(void* w, int w_dtype, int64_t ld_w, const void* b, int64_t ld_b, const void* a,
             int64_t ld_a, int ab_dtype, int64_t n, int64_t k, int64_t r, float c, bool stochastic,
             uint64_t seed, uint64_t stream_id) {
  __shared__ float sa[kRankChunk][kTileK];      // a[j0 + jj, t0 + tx]
  __shared__ float sb[kTileN][kRankChunk + 1];  // c * b[i0 + ii, j0 + jj]
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t t = blockIdx.x * (int64_t)kTileK + tx;
  for (int64_t i0 = blockIdx.y * (int64_t)kTileN; i0 < n; i0 += (int64_t)gridDim.y * kTileN) {
    float acc[kRowsPerThread];
#pragma unroll
    for (int q = 0; q < kRowsPerThread; ++q) acc[q] = 0.0f;
    for (int64_t j0 = 0; j0 < r; j0 += kRankChunk) {
      for (int jj = ty; jj < kRankChunk; jj += kBlockRows) {
        const int64_t j = j0 + jj;
        sa[jj][tx] = j < r && t < k ? load_f32(a, ab_dtype, j * ld_a + t) : 0.0f;
      }
      for (int ii = ty; ii < kTileN; ii += kBlockRows) {
        const int64_t i = i0 + ii, j = j0 + tx;
        sb[ii][tx] = i < n && j < r ? __fmul_rn(c, load_f32(b, ab_dtype, i * ld_b + j)) : 0.0f;
      }
      __syncthreads();
      const int chunk = static_cast<int>(r - j0 < kRankChunk ? r - j0 : kRankChunk);
      for (int jj = 0; jj < chunk; ++jj) {
        const float av = sa[jj][tx];
#pragma unroll
        for (int q = 0; q < kRowsPerThread; ++q) acc[q] = __fmaf_rn(sb[ty + q * kBlockRows][jj], av, acc[q]);
      }
      __syncthreads();
    }
    if (t >= k) continue;  // no __syncthreads below: the whole block reaches the next tile's loads
#pragma unroll
    for (int q = 0; q < kRowsPerThread; ++q) {
      const int64_t i = i0 + ty + q * kBlockRows;
      if (i >= n) break;
      const int64_t e = i * ld_w + t;
      if (stochastic) {
        uint16_t* w16 = static_cast<uint16_t*>(w);
        const uint32_t random = rounding_bits(seed, stream_id, static_cast<uint64_t>(i * k + t));
        w16[e] = f32_to_bf16_stochastic(__fadd_rn(bf16_to_f32(w16[e]), acc[q]), random);
      } else {
        store_f32(w, w_dtype, e, __fadd_rn(load_f32(w, w_dtype, e), acc[q]));
      }
    }
  }
}

// x[i,j] = factor * x[i,j], rounded to dtype.
__global__ void scale_kernel(void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, float factor) {
  const int64_t count = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < count;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t idx = (e / cols) * ld + e % cols;
    store_f32(x, dtype, idx, __fmul_rn(factor, load_f32(x, dtype, idx)));
  }
}

int scale(void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, float factor, cudaStream_t s,
          const char* what) {
  if (factor == 1.0f || rows == 0 || cols == 0) return ok();
  scale_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, s>>>(x, dtype, ld, rows, cols, factor);
  return launch_status(what);
}

}  // namespace

extern "C" {

int plora_cuda_merge(void* w, int w_dtype, int64_t ld_w, void* b, int64_t ld_b, void* a, int64_t ld_a,
                     int ab_dtype, int64_t n, int64_t k, int64_t r, float c, int rounding, uint64_t seed,
                     uint64_t stream_id, float scale_a, float scale_b, void* stream) {
  PLORA_TRY(check_merge_args(w, w_dtype, ld_w, b, ld_b, a, ld_a, ab_dtype, n, k, r, rounding));
  const bool stochastic = rounding == PLORA_ROUND_STOCHASTIC && w_dtype == PLORA_BF16;
  cudaStream_t s = as_stream(stream);

  if (n > 0 && k > 0 && r > 0) {
    const int64_t row_tiles = (n + kTileN - 1) / kTileN;
    const dim3 grid(static_cast<unsigned>((k + kTileK - 1) / kTileK),
                    capped_grid(row_tiles, 65535));
    const dim3 block(kTileK, kBlockRows);
    merge_kernel<<<grid, block, 0, s>>>(w, w_dtype, ld_w, b, ld_b, a, ld_a, ab_dtype, n, k, r, c,
                                        stochastic, seed, stream_id);
    PLORA_TRY(launch_status("merge"));
  }
  // Stream order: the scales run after the merge kernel has read a and b.
  PLORA_TRY(scale(a, ab_dtype, ld_a, r, k, scale_a, s, "merge (scale a)"));
  PLORA_TRY(scale(b, ab_dtype, ld_b, n, r, scale_b, s, "merge (scale b)"));
  return ok();
}

}  // extern "C"
