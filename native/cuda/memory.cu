// Device copies with dtype conversion and fills of libplora_cuda.
#include <cstring>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/cuda.h"

using namespace plora;

namespace {

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

int plora_cuda_compiled(void) { return 1; }

const char* plora_cuda_architectures(void) { return PLORA_CUDA_ARCHITECTURES; }

const char* plora_cuda_last_error(void) { return last_error().c_str(); }

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

}  // extern "C"
