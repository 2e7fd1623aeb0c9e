// Kernel family reductions on the GPU: sum of squares (in double) and non-finite count.
// CPU reference: native/cpu/reductions.cpp. Scratch and block reductions: reduce.cuh.
#include "../common/contracts.h"
#include "plora/reductions.h"
#include "reduce.cuh"

using namespace plora;

namespace {

constexpr int kCountBlocks = 1024;  // cap for count_nonfinite: one atomicAdd per block

__global__ void __launch_bounds__(kThreads)
sum_squares_kernel(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, double* out) {
  const int64_t n = rows * cols;
  double s = 0.0;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const double v = load_f32(x, dtype, (e / cols) * ld + e % cols);
    s += v * v;
  }
  add_block_sum(s, out);
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

int plora_cuda_sum_squares(const void* x, int dtype, int64_t ld, int64_t rows, int64_t cols, double* out,
                           void* scratch, void* stream) {
  PLORA_TRY(check_matrix_args("x", x, dtype, ld, rows, cols));
  PLORA_TRY(check_out_pointer("out", out));
  const int64_t address = reinterpret_cast<int64_t>(x);
  return plora_cuda_sum_squares_many(1, &address, &dtype, &ld, &rows, &cols, out, scratch, stream);
}

// Every tensor's kernel adds into one scratch sum on the stream; the host waits once, at the end.
int plora_cuda_sum_squares_many(int count, const int64_t* x, const int* dtypes, const int64_t* ld, const int64_t* rows,
                                const int64_t* cols, double* out, void* scratch, void* stream) {
  PLORA_TRY(check_sum_squares_many_args(count, x, dtypes, ld, rows, cols, out));
  PLORA_TRY(check_scratch(scratch));
  cudaStream_t s = as_stream(stream);
  Scratch* dev = static_cast<Scratch*>(scratch);
  PLORA_TRY(reset_scratch(dev, s, "sum_squares"));
  for (int t = 0; t < count; ++t) {
    if (rows[t] == 0 || cols[t] == 0) continue;
    sum_squares_kernel<<<reduce_blocks(rows[t] * cols[t]), kThreads, 0, s>>>(reinterpret_cast<const void*>(x[t]),
                                                                             dtypes[t], ld[t], rows[t], cols[t],
                                                                             &dev->sum);
    PLORA_TRY(launch_status("sum_squares"));
  }
  Scratch host{};
  PLORA_TRY(read_scratch(dev, &host, s, "sum_squares"));
  *out = host.sum;
  return ok();
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
  const unsigned blocks = capped_grid(blocks_for(rows * cols, kThreads), kCountBlocks);
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
