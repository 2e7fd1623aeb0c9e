// Kernel family random_fill on the GPU: a grid-stride loop over runs of eight elements of the
// logical rows x cols matrix (runs.cuh), element e = row * cols + col drawing element e of the
// Philox stream: a uniform run takes two Philox blocks (one per four elements), a normal run four
// (Box-Muller takes two words per element), and is stored in 16-byte accesses where the layout
// allows.
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/philox.h"
#include "plora/random_fill.h"
#include "runs.cuh"

using namespace plora;

namespace {

constexpr int kThreads = 256;

// normal_from_words with the cosine as cospif, whose argument 2 u2 in [0, 2) needs no reduction.
__device__ __forceinline__ float normal_of(uint32_t w1, uint32_t w2) {
  return box_muller_radius(w1) * cospif(2.0f * uniform_from_word(w2));
}

// The standard normals of elements [e0, e0 + kRun) (philox_normal: element e takes words
// 2 (e % 2), 2 (e % 2) + 1 of block e / 2): for even e0, block e0 / 2 + m holds elements e0 + 2m
// and e0 + 2m + 1, words by constant index; odd e0 draws a block per element.
__device__ __forceinline__ void normal_run(uint64_t seed, uint64_t stream_id, uint64_t e0, float (&z)[kRun]) {
  if ((e0 & 1) != 0) {
#pragma unroll
    for (int q = 0; q < kRun; ++q) {
      const uint64_t e = e0 + q;
      const Philox4 p = philox_block(seed, stream_id, e >> 1);
      z[q] = (e & 1) == 0 ? normal_of(p.v[0], p.v[1]) : normal_of(p.v[2], p.v[3]);
    }
    return;
  }
#pragma unroll
  for (int m = 0; m < kRun / 2; ++m) {
    const Philox4 p = philox_block(seed, stream_id, (e0 >> 1) + m);
    z[2 * m] = normal_of(p.v[0], p.v[1]);
    z[2 * m + 1] = normal_of(p.v[2], p.v[3]);
  }
}

// The products and sums below use __fmul_rn / __fadd_rn so that nvcc does not contract them into
// an FMA: each result is then the correctly rounded multiply-then-add, within one rounding of
// the host's (which may contract).
__global__ void random_fill_kernel(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols, int64_t per_row,
                                   bool vector, int distribution, float a, float b, uint64_t seed,
                                   uint64_t stream_id) {
  const int64_t runs = rows * per_row;
  for (int64_t run = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; run < runs;
       run += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = run / per_row, col = (run % per_row) * kRun;
    const uint64_t e0 = static_cast<uint64_t>(row * cols + col);
    float v[kRun];
    if (distribution == PLORA_UNIFORM) {
      uint32_t w[kRun];
      philox_run_words(seed, stream_id, e0, w);
#pragma unroll
      for (int q = 0; q < kRun; ++q) v[q] = __fadd_rn(a, __fmul_rn(b - a, uniform_from_word(w[q])));
    } else {
      normal_run(seed, stream_id, e0, v);
#pragma unroll
      for (int q = 0; q < kRun; ++q) v[q] = __fadd_rn(a, __fmul_rn(b, v[q]));
    }
    store_run8(out, dtype, row * ld + col, row * ld + cols, vector, v);
  }
}

}  // namespace

extern "C" {

int plora_cuda_random_fill(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                           int distribution, float a, float b, uint64_t seed, uint64_t stream_id,
                           void* stream) {
  PLORA_TRY(check_matrix_args("out", out, dtype, ld, rows, cols));
  PLORA_TRY(check_distribution(distribution));
  if (rows == 0 || cols == 0) return ok();
  const RunGrid runs(rows, cols);
  random_fill_kernel<<<grid_for(runs.count, kThreads), kThreads, 0, as_stream(stream)>>>(
      out, dtype, ld, rows, cols, runs.per_row, aligned_rows(out, ld, dtype), distribution, a, b, seed, stream_id);
  return launch_status("random_fill");
}

}  // extern "C"
