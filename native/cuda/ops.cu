// Elementwise operations of libplora_cuda: axpby, bias add, random fills, non-finite count.
// All are grid-stride loops over the logical rows x cols elements, e = row * cols + col.
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/cuda.h"
#include "plora/philox.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr int kCountBlocks = 1024;  // cap for count_nonfinite: one atomicAdd per block

// The products and sums below use __fmul_rn / __fadd_rn so that nvcc does not contract them into
// an FMA: each result is then the correctly rounded multiply-then-add, within one rounding of
// the host's (which may contract).

__global__ void axpby_kernel(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta,
                             void* y, int y_dtype, int64_t ld_y, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e / cols, j = e % cols;
    float v = __fmul_rn(alpha, load_f32(x, x_dtype, i * ld_x + j));
    if (beta != 0.0f) v = __fadd_rn(v, __fmul_rn(beta, load_f32(y, y_dtype, i * ld_y + j)));
    store_f32(y, y_dtype, i * ld_y + j, v);
  }
}

__global__ void add_bias_kernel(void* y, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                const void* bias, int bias_dtype) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e / cols, j = e % cols;
    store_f32(y, dtype, i * ld + j, load_f32(y, dtype, i * ld + j) + load_f32(bias, bias_dtype, j));
  }
}

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

// Each thread counts its elements, the block reduces (warp shuffles, then one value per warp in
// shared memory) and thread 0 adds the block's total to the counter.
__global__ void __launch_bounds__(kThreads)
count_nonfinite_kernel(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols,
                       unsigned long long* counter) {
  __shared__ unsigned long long partial[kThreads / 32];
  const int64_t n = rows * cols;
  unsigned long long count = 0;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    const float v = load_f32(x, dtype, (e / cols) * ld + e % cols);
    if ((float_bits(v) & 0x7f800000u) == 0x7f800000u) ++count;  // exponent all ones: inf or nan
  }
  for (int offset = 16; offset > 0; offset /= 2) count += __shfl_down_sync(0xffffffffu, count, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = count;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned long long total = 0;
    for (int w = 0; w < kThreads / 32; ++w) total += partial[w];
    if (total != 0) atomicAdd(counter, total);
  }
}

}  // namespace

extern "C" {

int plora_cuda_axpby(float alpha, const void* x, int x_dtype, int64_t ld_x, float beta, void* y,
                     int y_dtype, int64_t ld_y, int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_axpby_args(x, x_dtype, ld_x, y, y_dtype, ld_y, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  axpby_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, as_stream(stream)>>>(
      alpha, x, x_dtype, ld_x, beta, y, y_dtype, ld_y, rows, cols);
  return launch_status("axpby");
}

int plora_cuda_add_bias(void* y, int dtype, int64_t ld, int64_t rows, int64_t cols,
                        const void* bias, int bias_dtype, void* stream) {
  PLORA_TRY(check_add_bias_args(y, dtype, ld, rows, cols, bias, bias_dtype));
  if (rows == 0 || cols == 0) return ok();
  add_bias_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, as_stream(stream)>>>(
      y, dtype, ld, rows, cols, bias, bias_dtype);
  return launch_status("add_bias");
}

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

int plora_cuda_count_nonfinite(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols,
                               void* device_counter, int64_t* count, void* stream) {
  PLORA_TRY(check_matrix_args("x", x, dtype, ld, rows, cols));
  PLORA_TRY(check_out_pointer("count", count));
  if (device_counter == nullptr)
    return fail(PLORA_ERR_INVALID, "count_nonfinite: null device counter");
  if (reinterpret_cast<uintptr_t>(device_counter) % 8 != 0)
    return fail(PLORA_ERR_INVALID, "count_nonfinite: device counter not 8-byte aligned");
  if (rows == 0 || cols == 0) {
    *count = 0;
    return ok();
  }
  cudaStream_t s = as_stream(stream);
  unsigned long long* counter = static_cast<unsigned long long*>(device_counter);
  cudaError_t e = cudaMemsetAsync(counter, 0, sizeof *counter, s);
  if (e != cudaSuccess) return cuda_fail("count_nonfinite", e);
  const unsigned blocks = std::min(grid_for(rows * cols, kThreads), static_cast<unsigned>(kCountBlocks));
  count_nonfinite_kernel<<<blocks, kThreads, 0, s>>>(x, dtype, ld, rows, cols, counter);
  PLORA_TRY(launch_status("count_nonfinite"));
  unsigned long long host = 0;
  e = cudaMemcpyAsync(&host, counter, sizeof host, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return cuda_fail("count_nonfinite", e);
  *count = static_cast<int64_t>(host);
  return ok();
}

}  // extern "C"
