// Model ops on the GPU: sum of squares, GELU, MSE and softmax cross-entropy.
// CPU reference: native/cpu/model_ops.cpp (same formulas; sums in double).
//
// The functions that return a number use the caller's `scratch` (PLORA_CUDA_SCRATCH_BYTES of
// device memory, 8-byte aligned): [0, 8) a double sum, [8, 16) an unsigned 64-bit count. They
// reset it, launch, copy the result back on the stream and wait for the stream.
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/cuda.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kReduceBlocks = 1024;      // cap for the reductions: one atomicAdd per block
constexpr int64_t kMaxRowBlocks = 65535 * 16;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// Phi(x) = erfc(-x/√2)/2: no cancellation in the negative tail, where 1 + erf(x/√2) loses every
// digit; in double, as x/√2 rounded to fp32 would cost the tail its relative accuracy
__device__ float normal_cdf(float x) { return static_cast<float>(0.5 * erfc(-static_cast<double>(x) * 0.70710678118654752440)); }

struct Scratch {
  double sum;
  unsigned long long count;
};
static_assert(sizeof(Scratch) <= PLORA_CUDA_SCRATCH_BYTES, "scratch layout");

// Block-wide reductions for kThreads threads; every thread gets the result. `shared` holds
// kWarps + 1 values and may be reused right after the call returns.
template <typename T>
__device__ T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__device__ T block_sum(T v, T* shared) {
  v = warp_sum(v);
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    T total = shared[0];
    for (int w = 1; w < kWarps; ++w) total += shared[w];
    shared[kWarps] = total;
  }
  __syncthreads();
  const T result = shared[kWarps];
  __syncthreads();
  return result;
}

__device__ float block_max(float v, float* shared) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, offset));
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = shared[0];
    for (int w = 1; w < kWarps; ++w) m = fmaxf(m, shared[w]);
    shared[kWarps] = m;
  }
  __syncthreads();
  const float result = shared[kWarps];
  __syncthreads();
  return result;
}

// Adds the block's total of v to *out with one atomicAdd (thread 0).
__device__ void add_block_sum(double v, double* out) {
  __shared__ double partial[kWarps + 1];
  const double total = block_sum(v, partial);
  if (threadIdx.x == 0 && total != 0.0) atomicAdd(out, total);
}

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

// sum (pred - target)^2 in double into *out; dpred = grad_scale * (pred - target) when not null.
__global__ void __launch_bounds__(kThreads)
mse_kernel(const void* pred, int64_t ld_pred, const void* target, int64_t ld_target, int dtype, int64_t rows,
           int64_t cols, float grad_scale, void* dpred, int64_t ld_dpred, double* out) {
  const int64_t n = rows * cols;
  double s = 0.0;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e / cols, j = e % cols;
    const float d = __fsub_rn(load_f32(pred, dtype, i * ld_pred + j), load_f32(target, dtype, i * ld_target + j));
    s += static_cast<double>(d) * d;
    if (dpred != nullptr) store_f32(dpred, dtype, i * ld_dpred + j, __fmul_rn(grad_scale, d));
  }
  add_block_sum(s, out);
}

// Counts the labels that are not integers in [0, cols) (NaN included) into *bad.
__global__ void __launch_bounds__(kThreads)
check_labels_kernel(const float* labels, int64_t rows, float cols, unsigned long long* bad) {
  __shared__ unsigned long long partial[kWarps + 1];
  unsigned long long count = 0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows; i += (int64_t)gridDim.x * blockDim.x) {
    const float l = labels[i];
    if (!(l >= 0.0f && l < cols && l == floorf(l))) ++count;
  }
  const unsigned long long total = block_sum(count, partial);
  if (threadIdx.x == 0 && total != 0) atomicAdd(bad, total);
}

// One block per row (grid-stride over rows): the row max, sum of exp(x - max) in double,
// lse = max + log(sum); adds lse - x[label] to *total and, when dlogits is not null, writes
// (exp(x - lse) - onehot) / rows. Does nothing when check_labels_kernel found a bad label. All
// reads of a row precede the barrier inside the last block_sum, so dlogits may be logits.
__global__ void __launch_bounds__(kThreads)
softmax_xent_kernel(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t cols,
                    const float* labels, void* dlogits, int64_t ld_dlogits, const unsigned long long* bad,
                    double* total) {
  __shared__ float fshared[kWarps + 1];
  __shared__ double dshared[kWarps + 1];
  if (*bad != 0) return;  // uniform over the grid
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    const int64_t row = i * ld_logits;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += kThreads) mx = fmaxf(mx, load_f32(logits, dtype, row + j));
    mx = block_max(mx, fshared);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += kThreads)
      s += exp(static_cast<double>(load_f32(logits, dtype, row + j)) - mx);
    const int64_t label = static_cast<int64_t>(labels[i]);
    const float label_logit = threadIdx.x == 0 ? load_f32(logits, dtype, row + label) : 0.0f;
    const double lse = mx + log(block_sum(s, dshared));
    if (threadIdx.x == 0) atomicAdd(total, lse - label_logit);
    if (dlogits == nullptr) continue;
    for (int64_t j = threadIdx.x; j < cols; j += kThreads) {
      const double p = exp(static_cast<double>(load_f32(logits, dtype, row + j)) - lse);
      store_f32(dlogits, dtype, i * ld_dlogits + j,
                static_cast<float>((p - (j == label ? 1.0 : 0.0)) / static_cast<double>(rows)));
    }
  }
}

int check_scratch(void* scratch) {
  if (scratch == nullptr) return fail(PLORA_ERR_INVALID, "scratch: null pointer");
  if (reinterpret_cast<uintptr_t>(scratch) % 8 != 0)
    return fail(PLORA_ERR_INVALID, "scratch: not 8-byte aligned");
  return PLORA_OK;
}

int reset_scratch(Scratch* scratch, cudaStream_t s, const char* what) {
  cudaError_t e = cudaMemsetAsync(scratch, 0, sizeof(Scratch), s);
  if (e != cudaSuccess) return cuda_fail(what, e);
  return PLORA_OK;
}

// Copies the scratch back to *host and waits for the stream.
int read_scratch(const Scratch* scratch, Scratch* host, cudaStream_t s, const char* what) {
  cudaError_t e = cudaMemcpyAsync(host, scratch, sizeof *host, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return cuda_fail(what, e);
  return PLORA_OK;
}

unsigned reduce_blocks(int64_t n) {
  return std::min(grid_for(n, kThreads), static_cast<unsigned>(kReduceBlocks));
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

int plora_cuda_mse(const void* pred, int64_t ld_pred, const void* target, int64_t ld_target, int dtype,
                   int64_t rows, int64_t cols, double* loss, void* dpred, int64_t ld_dpred, void* scratch,
                   void* stream) {
  PLORA_TRY(check_mse_args(pred, ld_pred, target, ld_target, dtype, rows, cols, loss, dpred, ld_dpred));
  PLORA_TRY(check_scratch(scratch));
  const double count = static_cast<double>(rows) * static_cast<double>(cols);
  const float grad_scale = static_cast<float>(2.0 / count);
  cudaStream_t s = as_stream(stream);
  Scratch* dev = static_cast<Scratch*>(scratch);
  PLORA_TRY(reset_scratch(dev, s, "mse"));
  mse_kernel<<<reduce_blocks(rows * cols), kThreads, 0, s>>>(pred, ld_pred, target, ld_target, dtype, rows, cols,
                                                             grad_scale, dpred, ld_dpred, &dev->sum);
  PLORA_TRY(launch_status("mse"));
  Scratch host{};
  PLORA_TRY(read_scratch(dev, &host, s, "mse"));
  *loss = host.sum / count;
  return ok();
}

int plora_cuda_softmax_xent(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t cols,
                            const float* labels, double* loss, void* dlogits, int64_t ld_dlogits,
                            int64_t* bad_labels, void* scratch, void* stream) {
  PLORA_TRY(check_xent_args(logits, ld_logits, dtype, rows, cols, labels, loss, dlogits, ld_dlogits, bad_labels));
  PLORA_TRY(check_scratch(scratch));
  cudaStream_t s = as_stream(stream);
  Scratch* dev = static_cast<Scratch*>(scratch);
  PLORA_TRY(reset_scratch(dev, s, "softmax_xent"));
  // Phase 1 counts the bad labels; phase 2 reads that count on the device and writes nothing
  // when it is not zero, so one copy back and one wait serve both.
  check_labels_kernel<<<reduce_blocks(rows), kThreads, 0, s>>>(labels, rows, static_cast<float>(cols),
                                                               &dev->count);
  PLORA_TRY(launch_status("softmax_xent (labels)"));
  const unsigned row_blocks = static_cast<unsigned>(std::min<int64_t>(rows, kMaxRowBlocks));
  softmax_xent_kernel<<<row_blocks, kThreads, 0, s>>>(logits, ld_logits, dtype, rows, cols, labels, dlogits,
                                                      ld_dlogits, &dev->count, &dev->sum);
  PLORA_TRY(launch_status("softmax_xent"));
  Scratch host{};
  PLORA_TRY(read_scratch(dev, &host, s, "softmax_xent"));
  *bad_labels = static_cast<int64_t>(host.count);
  if (host.count != 0)
    return fail(PLORA_ERR_INVALID, "%lld labels are not class indices in [0, %lld)", (long long)host.count,
                (long long)cols);
  *loss = host.sum / static_cast<double>(rows);
  return ok();
}

}  // extern "C"
