// Kernel family elementwise on the GPU: copies with dtype conversion, fills, axpby, bias add.
// All are grid-stride loops over the logical rows x cols elements, e = row * cols + col.
#include <cstring>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/elementwise.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;

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


__global__ void copy_kernel(const void* src, int src_dtype, int64_t ld_src, void* dst,
                            int dst_dtype, int64_t ld_dst, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    int64_t i = e / cols, j = e % cols;
    store_f32(dst, dst_dtype, i * ld_dst + j, load_f32(src, src_dtype, i * ld_src + j));
  }
}

__global__ void fill_kernel(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols, float value) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    store_f32(dst, dtype, (e / cols) * ld + e % cols, value);
  }
}

}  // namespace

extern "C" {

int plora_cuda_copy(const void* src, int src_dtype, int64_t ld_src, void* dst, int dst_dtype,
                    int64_t ld_dst, int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_copy_args(src, src_dtype, ld_src, dst, dst_dtype, ld_dst, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  if (src_dtype == dst_dtype) {
    const size_t size = dtype_size(src_dtype);
    // contiguous rows are one linear copy: cudaMemcpy2D refuses pitches above 2 GiB
    const bool contiguous = rows == 1 || (ld_src == cols && ld_dst == cols);
    cudaError_t e = contiguous
        ? cudaMemcpyAsync(dst, src, rows * cols * size, cudaMemcpyDeviceToDevice, as_stream(stream))
        : cudaMemcpy2DAsync(dst, ld_dst * size, src, ld_src * size, cols * size, rows, cudaMemcpyDeviceToDevice,
                            as_stream(stream));
    if (e != cudaSuccess) return cuda_fail("copy", e);
    return ok();
  }
  const int threads = 256;
  copy_kernel<<<grid_for(rows * cols, threads), threads, 0, as_stream(stream)>>>(
      src, src_dtype, ld_src, dst, dst_dtype, ld_dst, rows, cols);
  return launch_status("copy");
}

int plora_cuda_fill(void* dst, int dtype, int64_t ld, int64_t rows, int64_t cols, float value,
                    void* stream) {
  PLORA_TRY(check_fill_args(dst, dtype, ld, rows, cols, value));
  if (rows == 0 || cols == 0) return ok();
  const int threads = 256;
  fill_kernel<<<grid_for(rows * cols, threads), threads, 0, as_stream(stream)>>>(dst, dtype, ld, rows,
                                                                               cols, value);
  return launch_status("fill");
}

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

}  // extern "C"
