// Kernel family gelu on the GPU: GELU forward and backward, a run of eight elements per thread
// (runs.cuh) in a grid-stride loop, in fp32 throughout. CPU reference: native/cpu/gelu.cpp, whose
// erfc (native/cpu/vmath.h) this follows: Numerical Recipes' erfcc with x²/2 carried exactly as a
// sum of two floats, so the negative tail keeps its relative accuracy without double arithmetic.
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/gelu.h"
#include "runs.cuh"

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// e^(a + b) for a sum fp32 cannot hold exactly (a = -x²/2 up to -104 beside b of order 1): s = a + b
// rounded, its error err = a + b - s exactly (TwoSum), and e^(a+b) = e^s (1 + err) to within err²/2.
// 0 where s < -104 (below the smallest subnormal; also where x²/2 overflowed to inf).
__device__ __forceinline__ float exp_sum(float a, float b) {
  const float s = __fadd_rn(a, b);
  if (s < -104.0f) return 0.0f;
  const float bb = __fsub_rn(s, a);
  const float err = __fadd_rn(__fsub_rn(a, __fsub_rn(s, bb)), __fsub_rn(b, bb));
  const float e = expf(s);
  return __fmaf_rn(e, err, e);
}

// x²/2 = hi + lo exactly; lo = 0 where x²/2 overflows or x is not finite (no inf - inf below).
__device__ __forceinline__ void half_square(float x, float& hi, float& lo) {
  const float half_x = __fmul_rn(0.5f, x);
  hi = __fmul_rn(half_x, x);
  const float rest = __fmaf_rn(half_x, x, -hi);
  lo = fabsf(rest) < INFINITY ? rest : 0.0f;
}

// Phi(x) = P(N(0,1) <= x) = erfc(|x|/√2)/2 or 1 minus that: erfc(z) = t·exp(P(t) - z²) with
// t = 1/(1 + z/2) (fractional error below 1.2e-7 for every z), z² = x²/2 taken exactly from x.
__device__ __forceinline__ float normal_cdf(float x) {
  float hi, lo;
  half_square(x, hi, lo);
  const float z = __fmul_rn(fabsf(x), 0.70710678118654752f);
  const float t = __fdiv_rn(1.0f, __fmaf_rn(z, 0.5f, 1.0f));
  float p = 0.17087277f;
  p = __fmaf_rn(p, t, -0.82215223f);
  p = __fmaf_rn(p, t, 1.48851587f);
  p = __fmaf_rn(p, t, -1.13520398f);
  p = __fmaf_rn(p, t, 0.27886807f);
  p = __fmaf_rn(p, t, -0.18628806f);
  p = __fmaf_rn(p, t, 0.09678418f);
  p = __fmaf_rn(p, t, 0.37409196f);
  p = __fmaf_rn(p, t, 1.00002368f);
  p = __fmaf_rn(p, t, -1.26551223f);
  const float half_tail = __fmul_rn(0.5f, __fmul_rn(t, exp_sum(-hi, __fsub_rn(p, lo))));
  return x < 0.0f ? half_tail : __fsub_rn(1.0f, half_tail);
}

// phi(x) = exp(-x²/2)/√(2π), x²/2 taken exactly as above.
__device__ __forceinline__ float normal_pdf(float x) {
  float hi, lo;
  half_square(x, hi, lo);
  return __fmul_rn(kInvSqrt2Pi, exp_sum(-hi, -lo));
}

// y = x * Phi(x); y may be x (each run is read before it is written, by the same thread).
__global__ void gelu_kernel(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype, int64_t rows,
                            int64_t cols, int64_t per_row, bool vector) {
  const int64_t runs = rows * per_row;
  for (int64_t run = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; run < runs; run += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = run / per_row, j = (run % per_row) * kRun;
    float v[kRun];
    load_run8(x, dtype, i * ld_x + j, i * ld_x + cols, vector, v);
#pragma unroll
    for (int q = 0; q < kRun; ++q) v[q] = __fmul_rn(v[q], normal_cdf(v[q]));
    store_run8(y, dtype, i * ld_y + j, i * ld_y + cols, vector, v);
  }
}

// dx = dy * (Phi(x) + x * phi(x)); dx may be dy.
__global__ void gelu_backward_kernel(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy, void* dx,
                                     int64_t ld_dx, int dtype, int64_t rows, int64_t cols, int64_t per_row,
                                     bool vector) {
  const int64_t runs = rows * per_row;
  for (int64_t run = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; run < runs; run += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = run / per_row, j = (run % per_row) * kRun;
    float v[kRun], g[kRun];
    load_run8(x, dtype, i * ld_x + j, i * ld_x + cols, vector, v);
    load_run8(dy, dtype, i * ld_dy + j, i * ld_dy + cols, vector, g);
#pragma unroll
    for (int q = 0; q < kRun; ++q)
      g[q] = __fmul_rn(g[q], __fadd_rn(normal_cdf(v[q]), __fmul_rn(v[q], normal_pdf(v[q]))));
    store_run8(dx, dtype, i * ld_dx + j, i * ld_dx + cols, vector, g);
  }
}

}  // namespace

extern "C" {

int plora_cuda_gelu(const void* x, int64_t ld_x, void* y, int64_t ld_y, int dtype, int64_t rows, int64_t cols,
                    void* stream) {
  PLORA_TRY(check_elementwise_args(x, ld_x, nullptr, 0, y, ld_y, dtype, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  const RunGrid runs(rows, cols);
  const bool vector = aligned_rows(x, ld_x, dtype) && aligned_rows(y, ld_y, dtype);
  gelu_kernel<<<grid_for(runs.count, kThreads), kThreads, 0, as_stream(stream)>>>(x, ld_x, y, ld_y, dtype, rows, cols,
                                                                                 runs.per_row, vector);
  return launch_status("gelu");
}

int plora_cuda_gelu_backward(const void* x, int64_t ld_x, const void* dy, int64_t ld_dy, void* dx,
                             int64_t ld_dx, int dtype, int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_elementwise_args(x, ld_x, dy, ld_dy, dx, ld_dx, dtype, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  const RunGrid runs(rows, cols);
  const bool vector = aligned_rows(x, ld_x, dtype) && aligned_rows(dy, ld_dy, dtype) && aligned_rows(dx, ld_dx, dtype);
  gelu_backward_kernel<<<grid_for(runs.count, kThreads), kThreads, 0, as_stream(stream)>>>(
      x, ld_x, dy, ld_dy, dx, ld_dx, dtype, rows, cols, runs.per_row, vector);
  return launch_status("gelu_backward");
}

}  // extern "C"
