// RMSNorm on the GPU (plora/rmsnorm.h). CPU reference: native/cpu/rmsnorm.cpp (same formulas;
// row sums in double). A block per row; the weight gradient by a thread per column looping over
// the rows in order, so it is deterministic.
#include <algorithm>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/rmsnorm.h"
#include "reduce.cuh"

using namespace plora;

namespace {

constexpr int64_t kMaxRowBlocks = 65535 * 16;

__global__ void __launch_bounds__(kThreads)
rmsnorm_kernel(const void* x, int64_t ld_x, const void* w, void* y, int64_t ld_y, float* rstd, int dtype, int64_t rows,
               int64_t cols, float eps) {
  __shared__ double partial[kWarps + 1];
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const double v = load_f32(x, dtype, i * ld_x + j);
      s += v * v;
    }
    s = block_sum(s, partial);
    const float r = cols == 0 ? 0.0f : static_cast<float>(1.0 / sqrt(s / static_cast<double>(cols) + eps));
    if (threadIdx.x == 0 && rstd != nullptr) rstd[i] = r;
    // each thread rewrites the elements it read, so y may be x
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float v = load_f32(x, dtype, i * ld_x + j);
      store_f32(y, dtype, i * ld_y + j, load_f32(w, dtype, j) * round_f32(dtype, v * r));
    }
  }
}

__global__ void __launch_bounds__(kThreads)
rmsnorm_dw_kernel(const void* x, int64_t ld_x, const float* rstd, const void* dy, int64_t ld_dy, float* dw, int dtype,
                  int64_t rows, int64_t cols) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < cols;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double acc = 0.0;
    for (int64_t i = 0; i < rows; ++i)
      acc += static_cast<double>(load_f32(dy, dtype, i * ld_dy + j)) * (load_f32(x, dtype, i * ld_x + j) * rstd[i]);
    dw[j] += static_cast<float>(acc);
  }
}

__global__ void __launch_bounds__(kThreads)
rmsnorm_dx_kernel(const void* x, int64_t ld_x, const void* w, const float* rstd, const void* dy, int64_t ld_dy,
                  void* dx, int64_t ld_dx, int dtype, int64_t rows, int64_t cols) {
  __shared__ double partial[kWarps + 1];
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    const float r = rstd[i];
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
      s += static_cast<double>(load_f32(dy, dtype, i * ld_dy + j) * load_f32(w, dtype, j)) *
           (load_f32(x, dtype, i * ld_x + j) * r);
    const float mean = static_cast<float>(block_sum(s, partial) / static_cast<double>(cols));
    // each thread rewrites the elements it read, so dx may be dy
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      const float g = load_f32(dy, dtype, i * ld_dy + j) * load_f32(w, dtype, j);
      const float xh = load_f32(x, dtype, i * ld_x + j) * r;
      store_f32(dx, dtype, i * ld_dx + j, r * (g - xh * mean));
    }
  }
}

unsigned row_blocks(int64_t rows) { return capped_grid(std::max<int64_t>(rows, 1), kMaxRowBlocks); }

}  // namespace

extern "C" {

int plora_cuda_rmsnorm(const void* x, int64_t ld_x, const void* w, void* y, int64_t ld_y, float* rstd, int dtype,
                       int64_t rows, int64_t cols, float eps, void* stream) {
  PLORA_TRY(check_rmsnorm_args(x, ld_x, w, y, ld_y, dtype, rows, cols, eps));
  if (rows == 0) return ok();
  rmsnorm_kernel<<<row_blocks(rows), kThreads, 0, as_stream(stream)>>>(x, ld_x, w, y, ld_y, rstd, dtype, rows, cols,
                                                                       eps);
  return launch_status("rmsnorm");
}

int plora_cuda_rmsnorm_backward(const void* x, int64_t ld_x, const void* w, const float* rstd, const void* dy,
                                int64_t ld_dy, void* dx, int64_t ld_dx, float* dw, int dtype, int64_t rows,
                                int64_t cols, void* stream) {
  PLORA_TRY(check_rmsnorm_backward_args(x, ld_x, w, rstd, dy, ld_dy, dx, ld_dx, dtype, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  cudaStream_t s = as_stream(stream);
  if (dw != nullptr) {  // first: dx may be dy and would overwrite it
    rmsnorm_dw_kernel<<<grid_for(cols, kThreads), kThreads, 0, s>>>(x, ld_x, rstd, dy, ld_dy, dw, dtype, rows, cols);
    PLORA_TRY(launch_status("rmsnorm backward (dw)"));
  }
  rmsnorm_dx_kernel<<<row_blocks(rows), kThreads, 0, s>>>(x, ld_x, w, rstd, dy, ld_dy, dx, ld_dx, dtype, rows, cols);
  return launch_status("rmsnorm backward (dx)");
}

}  // extern "C"
