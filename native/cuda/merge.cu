// In-place merge on the GPU: W += c * B * A with fp32 accumulation, stochastic or nearest
// rounding into 16-bit W, then A and B scaled (PLoRA's momentum unloading) in the same call.
// CPU reference: native/cpu/merge.cpp (same accumulation order, same Philox element indexing).
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/merge.h"
#include "plora/philox.h"
#include "runs.cuh"

using namespace plora;

namespace {

// A block is kBlockRows warps; lane x owns the run of kRun columns t0 + kRun * x of the tile,
// warp y the rows y + kBlockRows * q (q < kRowsPerThread): a warp's row of the tile is 256
// contiguous columns, read and written in 16-byte accesses where the layout allows.
constexpr int kBlockRows = 8;
constexpr int kRowsPerThread = 4;
constexpr int kTileN = kBlockRows * kRowsPerThread;  // w rows per tile
constexpr int kTileK = 32 * kRun;                    // w columns per tile
constexpr int kRankChunk = 16;                       // rank columns staged in shared memory per pass
constexpr int kThreads = 256;                        // scale kernel

// The 16 random bits of element o (0 <= o < 16) of the two Philox blocks p0, p1, which hold
// elements [8 g, 8 g + 16) of the rounding stream (rounding_bits: element e is half e % 2 of word
// e / 2). Selected, not indexed: the words stay in registers.
__device__ __forceinline__ uint32_t pick_bits(const Philox4& p0, const Philox4& p1, unsigned o) {
  const unsigned w = o >> 1;
  const uint32_t word = w == 0 ? p0.v[0] : w == 1 ? p0.v[1] : w == 2 ? p0.v[2] : w == 3 ? p0.v[3]
                      : w == 4 ? p1.v[0] : w == 5 ? p1.v[1] : w == 6 ? p1.v[2] : p1.v[3];
  return (word >> (16 * (o & 1))) & 0xffffu;
}

// w[i, t0 .. t0 + kRun) + update, stochastically rounded to bf16 with the bits of elements
// e0 = i * k + t0 on: one Philox block per eight elements where e0 is a multiple of 8 (k % 8 == 0,
// every model shape), the word taken by its constant index; two blocks otherwise.
__device__ __forceinline__ void round_stochastic(const float (&sum)[kRun], uint64_t seed, uint64_t stream_id,
                                                 uint64_t e0, uint16_t (&h)[kRun]) {
  const Philox4 p0 = philox_block(seed, stream_id, e0 >> 3);
  if ((e0 & 7) == 0) {
#pragma unroll
    for (int q = 0; q < kRun; ++q) h[q] = f32_to_bf16_stochastic(sum[q], (p0.v[q / 2] >> (16 * (q % 2))) & 0xffffu);
    return;
  }
  const Philox4 p1 = philox_block(seed, stream_id, (e0 >> 3) + 1);
  const unsigned o = static_cast<unsigned>(e0 & 7);
#pragma unroll
  for (int q = 0; q < kRun; ++q) h[q] = f32_to_bf16_stochastic(sum[q], pick_bits(p0, p1, o + q));
}

// One block per kTileN x kTileK tile of w (blockIdx.y walks row tiles with a grid stride). The
// rank is consumed in chunks of kRankChunk: the block stages a[j0.., t0..] and c * b[i0.., j0..]
// in shared memory, then each thread updates its kRowsPerThread x kRun accumulators. Like the
// host, each element accumulates update = sum_j (c * b[i,j]) * a[j,t] in ascending j with fused
// multiply-adds, and then w = w + update is rounded once into w_dtype: the same bits as the host.
// `vector`: every run of w is 16-byte aligned (aligned_rows).
__global__ void __launch_bounds__(32 * kBlockRows)
merge_kernel(void* w, int w_dtype, int64_t ld_w, const void* b, int64_t ld_b, const void* a,
             int64_t ld_a, int ab_dtype, int64_t n, int64_t k, int64_t r, float c, bool stochastic,
             bool vector, uint64_t seed, uint64_t stream_id) {
  // a[j0 + jj, t0 + kRun * x + l] at sa[jj][32 * l + x]: a lane's kRun reads of a rank step
  // then fall in 32 different banks (in tile order they would be 8-way conflicts)
  __shared__ float sa[kRankChunk][kTileK];
  __shared__ float sb[kTileN][kRankChunk + 1];  // c * b[i0 + ii, j0 + jj]
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 32 + tx;
  const int64_t t0 = blockIdx.x * (int64_t)kTileK, t = t0 + tx * kRun;
  for (int64_t i0 = blockIdx.y * (int64_t)kTileN; i0 < n; i0 += (int64_t)gridDim.y * kTileN) {
    // w's runs are loaded first, so that their latency overlaps the multiply-adds below
    float wv[kRowsPerThread][kRun], acc[kRowsPerThread][kRun];
#pragma unroll
    for (int q = 0; q < kRowsPerThread; ++q) {
      const int64_t i = i0 + ty + q * kBlockRows;
      if (i < n && t < k) load_run8(w, w_dtype, i * ld_w + t, i * ld_w + k, vector, wv[q]);
#pragma unroll
      for (int l = 0; l < kRun; ++l) acc[q][l] = 0.0f;
    }
    for (int64_t j0 = 0; j0 < r; j0 += kRankChunk) {
      for (int s = tid; s < kRankChunk * kTileK; s += 32 * kBlockRows) {  // a warp: one row of a, contiguous
        const int jj = s / kTileK, tt = s % kTileK;
        const int64_t j = j0 + jj;
        sa[jj][(tt % kRun) * 32 + tt / kRun] = j < r && t0 + tt < k ? load_f32(a, ab_dtype, j * ld_a + t0 + tt) : 0.0f;
      }
      for (int s = tid; s < kTileN * kRankChunk; s += 32 * kBlockRows) {
        const int ii = s / kRankChunk, jj = s % kRankChunk;
        const int64_t i = i0 + ii, j = j0 + jj;
        sb[ii][jj] = i < n && j < r ? __fmul_rn(c, load_f32(b, ab_dtype, i * ld_b + j)) : 0.0f;
      }
      __syncthreads();
      const int chunk = static_cast<int>(r - j0 < kRankChunk ? r - j0 : kRankChunk);
      for (int jj = 0; jj < chunk; ++jj) {
        float av[kRun];
#pragma unroll
        for (int l = 0; l < kRun; ++l) av[l] = sa[jj][32 * l + tx];
#pragma unroll
        for (int q = 0; q < kRowsPerThread; ++q) {
          const float cb = sb[ty + q * kBlockRows][jj];
#pragma unroll
          for (int l = 0; l < kRun; ++l) acc[q][l] = __fmaf_rn(cb, av[l], acc[q][l]);
        }
      }
      __syncthreads();
    }
    if (t >= k) continue;  // no __syncthreads below: the whole block reaches the next tile's loads
#pragma unroll
    for (int q = 0; q < kRowsPerThread; ++q) {
      const int64_t i = i0 + ty + q * kBlockRows;
      if (i >= n) break;
      const int64_t e = i * ld_w + t, end = i * ld_w + k;
      float sum[kRun];
#pragma unroll
      for (int l = 0; l < kRun; ++l) sum[l] = __fadd_rn(wv[q][l], acc[q][l]);
      if (stochastic) {
        uint16_t h[kRun];
        round_stochastic(sum, seed, stream_id, static_cast<uint64_t>(i * k + t), h);
        store_run16(static_cast<uint16_t*>(w), e, end, vector, h);
      } else {
        store_run8(w, w_dtype, e, end, vector, sum);
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
    const dim3 block(32, kBlockRows);
    merge_kernel<<<grid, block, 0, s>>>(w, w_dtype, ld_w, b, ld_b, a, ld_a, ab_dtype, n, k, r, c,
                                        stochastic, aligned_rows(w, ld_w, w_dtype), seed, stream_id);
    PLORA_TRY(launch_status("merge"));
  }
  // Stream order: the scales run after the merge kernel has read a and b.
  PLORA_TRY(scale(a, ab_dtype, ld_a, r, k, scale_a, s, "merge (scale a)"));
  PLORA_TRY(scale(b, ab_dtype, ld_b, n, r, scale_b, s, "merge (scale b)"));
  return ok();
}

}  // extern "C"
