// LoRA shrink on the GPU: out = scaling * (x * mask / (1-p)) * A^T, dropout fused.
// CPU reference: native/cpu/shrink.cpp (same Philox keys, same element indexing).
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/cuda.h"
#include "plora/philox.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRankTile = 16;  // output columns accumulated per pass over the row of x

__global__ void dropout_mask_kernel(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                    float keep_scale, uint32_t threshold, uint64_t seed,
                                    uint64_t stream_id) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    bool keep = dropout_keep(seed, stream_id, static_cast<uint64_t>(e), threshold);
    store_f32(out, dtype, (e / cols) * ld + e % cols, keep ? keep_scale : 0.0f);
  }
}

// One block per row of x: each thread accumulates a strided slice of the dot products for
// kRankTile outputs, then the block reduces them.
__global__ void __launch_bounds__(kThreads)
shrink_kernel(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out, int64_t ld_out,
              int dtype, int64_t m, int64_t k, int64_t r, float scaling, float keep_scale,
              uint32_t threshold, uint64_t seed, uint64_t stream_id) {
  __shared__ float partial[kWarps][kRankTile];
  for (int64_t row = blockIdx.x; row < m; row += gridDim.x) {
    for (int64_t j0 = 0; j0 < r; j0 += kRankTile) {
      const int tile = static_cast<int>(r - j0 < kRankTile ? r - j0 : kRankTile);
      float acc[kRankTile];
#pragma unroll
      for (int c = 0; c < kRankTile; ++c) acc[c] = 0.0f;
      for (int64_t t = threadIdx.x; t < k; t += kThreads) {
        float v = load_f32(x, dtype, row * ld_x + t);
        if (threshold != 0u)
          v *= dropout_keep(seed, stream_id, static_cast<uint64_t>(row * k + t), threshold) ? keep_scale : 0.0f;
#pragma unroll
        for (int c = 0; c < kRankTile; ++c)
          if (c < tile) acc[c] += v * load_f32(a, dtype, (j0 + c) * ld_a + t);
      }
      store_block_sums<kWarps, kRankTile>(acc, partial, tile, out, dtype, row * ld_out + j0, scaling);
    }
  }
}

}  // namespace

extern "C" {

int plora_cuda_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols, float p,
                            uint64_t seed, uint64_t stream_id, void* stream) {
  PLORA_TRY(check_matrix_args("out", out, dtype, ld, rows, cols));
  PLORA_TRY(check_dropout(p));
  if (rows == 0 || cols == 0) return ok();
  dropout_mask_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, as_stream(stream)>>>(
      out, dtype, ld, rows, cols, 1.0f / (1.0f - p), dropout_threshold(p), seed, stream_id);
  return launch_status("dropout_mask");
}

int plora_cuda_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out,
                      int64_t ld_out, int dtype, int64_t m, int64_t k, int64_t r, float scaling,
                      float p, uint64_t seed, uint64_t stream_id, void* stream) {
  PLORA_TRY(check_shrink_args(x, ld_x, a, ld_a, out, ld_out, dtype, m, k, r, p));
  if (m == 0 || r == 0) return ok();
  const unsigned blocks = static_cast<unsigned>(m < 65535 * 16 ? m : 65535 * 16);
  shrink_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(x, ld_x, a, ld_a, out, ld_out, dtype, m,
                                                            k, r, scaling, 1.0f / (1.0f - p),
                                                            dropout_threshold(p), seed, stream_id);
  return launch_status("shrink");
}

}  // extern "C"
