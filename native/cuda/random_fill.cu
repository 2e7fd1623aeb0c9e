// Kernel family random_fill on the GPU: a grid-stride loop over the logical rows x cols
// elements, e = row * cols + col, drawing element e of the Philox stream.
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/philox.h"
#include "plora/random_fill.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;

// The products and sums below use __fmul_rn / __fadd_rn so that nvcc does not contract them into
// an FMA: each result is then the correctly rounded multiply-then-add, within one rounding of
// the host's (which may contract).

__global__ void random_fill_kernel(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                   int distribution, float a, float b, uint64_t seed,
                                   uint64_t stream_id) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    const uint64_t index = static_cast<uint64_t>(e);
    const float v = distribution == PLORA_UNIFORM
                        ? __fadd_rn(a, __fmul_rn(b - a, philox_uniform(seed, stream_id, index)))
                        : __fadd_rn(a, __fmul_rn(b, philox_normal(seed, stream_id, index)));
    store_f32(out, dtype, (e / cols) * ld + e % cols, v);
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
  random_fill_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, as_stream(stream)>>>(
      out, dtype, ld, rows, cols, distribution, a, b, seed, stream_id);
  return launch_status("random_fill");
}

}  // extern "C"
