// Kernel family losses on the GPU: MSE and softmax cross-entropy (sums in double).
// CPU reference: native/cpu/losses.cpp. Scratch and block reductions: reduce.cuh.
#include "../common/contracts.h"
#include "plora/losses.h"
#include "reduce.cuh"

using namespace plora;

namespace {

constexpr int64_t kMaxRowBlocks = 65535 * 16;

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

}  // namespace

extern "C" {

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
  const unsigned row_blocks = capped_grid(rows, kMaxRowBlocks);
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
