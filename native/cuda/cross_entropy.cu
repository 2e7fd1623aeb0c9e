// Token cross-entropy on the GPU (plora/cross_entropy.h). CPU reference:
// native/cpu/cross_entropy.cpp (same formulas). A first kernel counts the bad targets in the
// caller's scratch; the loss kernel reads that count on the device and writes nothing when it is
// not zero, so one copy back serves both. A block per row: max, then the sum of exponentials in
// double, then the gradient. Each block adds its rows' losses in row order and then to the total
// with one atomicAdd, so the loss's last bits may depend on the blocks' timing; the gradient does
// not.
#include <algorithm>
#include <cstdint>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/cross_entropy.h"
#include "plora/cuda.h"
#include "reduce.cuh"

using namespace plora;

namespace {

constexpr int kMaxBlocks = 1024;

struct Totals {  // in the caller's scratch
  double loss;
  unsigned long long counted;
  unsigned long long bad;
};
static_assert(sizeof(Totals) <= PLORA_CUDA_SCRATCH_BYTES, "scratch layout");

__global__ void __launch_bounds__(kThreads)
check_targets_kernel(const int32_t* targets, int64_t ld_targets, int64_t rows, int64_t vocab, int32_t ignore_index,
                     Totals* totals) {
  unsigned long long bad = 0, counted = 0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t t = targets[i * ld_targets];
    if (t == ignore_index) continue;
    if (t < 0 || t >= vocab) ++bad;
    else ++counted;
  }
  if (bad != 0) atomicAdd(&totals->bad, bad);
  if (counted != 0) atomicAdd(&totals->counted, counted);
}

__device__ float block_max(float v, float* shared) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = v;
  __syncthreads();
  float m = shared[0];
  for (int w = 1; w < kWarps; ++w) m = fmaxf(m, shared[w]);
  __syncthreads();
  return m;
}

__global__ void __launch_bounds__(kThreads)
cross_entropy_kernel(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t vocab,
                     const int32_t* targets, int64_t ld_targets, int32_t ignore_index, float grad_scale,
                     void* dlogits, int64_t ld_dlogits, Totals* totals) {
  __shared__ float max_partial[kWarps];
  __shared__ double sum_partial[kWarps + 1];
  if (totals->bad != 0) return;
  double block_loss = 0.0;  // thread 0's running sum of this block's rows, in row order
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    const int32_t t = targets[i * ld_targets];
    if (t == ignore_index) {
      if (dlogits != nullptr)
        for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) store_f32(dlogits, dtype, i * ld_dlogits + j, 0.0f);
      continue;
    }
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) m = fmaxf(m, load_f32(logits, dtype, i * ld_logits + j));
    m = block_max(m, max_partial);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
      s += exp(static_cast<double>(load_f32(logits, dtype, i * ld_logits + j)) - m);
    s = block_sum(s, sum_partial);
    const double lse_exact = m + log(s);
    const float lse = static_cast<float>(lse_exact);
    // read by every thread before any writes the row (dlogits may be logits)
    const float target_logit = load_f32(logits, dtype, i * ld_logits + t);
    __syncthreads();
    if (threadIdx.x == 0) block_loss += lse_exact - target_logit;
    if (dlogits != nullptr)
      for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
        const float x = load_f32(logits, dtype, i * ld_logits + j);
        const float p = grad_scale * expf(x - lse);
        store_f32(dlogits, dtype, i * ld_dlogits + j, j == t ? p - grad_scale : p);
      }
  }
  if (threadIdx.x == 0 && block_loss != 0.0) atomicAdd(&totals->loss, block_loss);
}

}  // namespace

extern "C" {

int plora_cuda_cross_entropy(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t vocab,
                             const int32_t* targets, int64_t ld_targets, int32_t ignore_index, float grad_scale,
                             double* loss_sum, int64_t* counted, void* dlogits, int64_t ld_dlogits,
                             int64_t* bad_targets, void* scratch, void* stream) {
  PLORA_TRY(check_cross_entropy_args(logits, ld_logits, dtype, rows, vocab, targets, ld_targets, grad_scale, loss_sum,
                                     counted, dlogits, ld_dlogits));
  PLORA_TRY(check_scratch(scratch));
  if (bad_targets != nullptr) *bad_targets = 0;
  *loss_sum = 0;
  *counted = 0;
  if (rows == 0) return ok();
  cudaStream_t s = as_stream(stream);
  Totals* totals = static_cast<Totals*>(scratch);
  cudaError_t e = cudaMemsetAsync(totals, 0, sizeof(Totals), s);
  if (e != cudaSuccess) return cuda_fail("cross_entropy", e);
  check_targets_kernel<<<capped_grid(blocks_for(rows, kThreads), kMaxBlocks), kThreads, 0, s>>>(
      targets, ld_targets, rows, vocab, ignore_index, totals);
  PLORA_TRY(launch_status("cross_entropy (targets)"));
  const unsigned blocks = capped_grid(rows, kMaxBlocks);
  cross_entropy_kernel<<<blocks, kThreads, 0, s>>>(logits, ld_logits, dtype, rows, vocab, targets, ld_targets,
                                                   ignore_index, grad_scale, dlogits, ld_dlogits, totals);
  PLORA_TRY(launch_status("cross_entropy"));
  Totals host{};
  e = cudaMemcpyAsync(&host, totals, sizeof host, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return cuda_fail("cross_entropy", e);
  if (bad_targets != nullptr) *bad_targets = static_cast<int64_t>(host.bad);
  if (host.bad != 0)
    return fail(PLORA_ERR_INVALID, "cross_entropy: %llu targets outside [0, %lld) and not %d", host.bad,
                (long long)vocab, ignore_index);
  *loss_sum = host.loss;
  *counted = static_cast<int64_t>(host.counted);
  return ok();
}

}  // extern "C"
