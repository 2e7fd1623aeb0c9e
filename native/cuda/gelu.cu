// Kernel family gelu on the GPU: GELU forward and backward, grid-stride loops.
// CPU reference: native/cpu/gelu.cpp (same formulas).
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/gelu.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// Phi(x) = erfc(-x/√2)/2: no cancellation in the negative tail, where 1 + erf(x/√2) loses every
// digit; in double, as x/√2 rounded to fp32 would cost the tail its relative accuracy
__device__ float normal_cdf(float x) { return static_cast<float>(0.5 * erfc(-static_cast<double>(x) * 0.70710678118654752440)); }

// y = x * Phi(x); y may be x (each element is read before it is written, by the same thread).
__global__ void gelu_kernel(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype, int64_t rows,
                            int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e / cols, j = e % cols;
    const float v = load_f32(x, dtype, i * ld_x + j);
    store_f32(y, dtype, i * ld_y + j, v * normal_cdf(v));
  }
}

// dx = dy * (Phi(x) + x * phi(x)); dx may be dy.
__global__ void gelu_backward_kernel(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy, void* dx,
                                     int64_t ld_dx, int dtype, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e / cols, j = e % cols;
    const float v = load_f32(x, dtype, i * ld_x + j);
    const float pdf = kInvSqrt2Pi * expf(-0.5f * v * v);
    store_f32(dx, dtype, i * ld_dx + j, load_f32(dy, dtype, i * ld_dy + j) * (normal_cdf(v) + v * pdf));
  }
}

}  // namespace

extern "C" {

int plora_cuda_gelu(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype, int64_t rows, int64_t cols,
                    void* stream) {
  PLORA_TRY(check_elementwise_args(x, ld_x, nullptr, 0, y, ld_y, dtype, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  gelu_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, as_stream(stream)>>>(x, ld_x, y, ld_y, dtype,
                                                                                  rows, cols);
  return launch_status("gelu");
}

int plora_cuda_gelu_backward(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy, void* dx,
                             int64_t ld_dx, int dtype, int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_elementwise_args(x, ld_x, dy, ld_dy, dx, ld_dx, dtype, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  gelu_backward_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, as_stream(stream)>>>(
      x, ld_x, dy, ld_dy, dx, ld_dx, dtype, rows, cols);
  return launch_status("gelu_backward");
}

}  // extern "C"
