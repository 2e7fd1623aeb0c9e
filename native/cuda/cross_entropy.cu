// Token cross-entropy on the GPU (plora/cross_entropy.h). CPU reference:
// native/cpu/cross_entropy.cpp (same formulas). A first kernel counts the bad targets in the
// caller's scratch; the loss kernel reads that count on the device and writes nothing when it is
// not zero, so one copy back serves both. The rows (one read and one write pass each, the loss
// the same bits on every run): softmax_rows.cuh.
#include <algorithm>
#include <cstdint>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/cross_entropy.h"
#include "plora/cuda.h"
#include "softmax_rows.cuh"

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

// Row i's target column, or -1 where it is ignore_index (check_targets_kernel vouched for the rest).
struct TokenTargets {
  const int32_t* targets;
  int64_t ld;
  int32_t ignore_index;
  __device__ int64_t operator()(int64_t i) const {
    const int32_t t = targets[i * ld];
    return t == ignore_index ? -1 : t;
  }
};

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
  const bool vector = aligned_rows(logits, ld_logits, dtype) && (dlogits == nullptr || aligned_rows(dlogits, ld_dlogits, dtype));
  const SoftmaxRowsGrid grid(rows, vocab);
  StreamScratch<double> unit_loss(s);
  PLORA_TRY(unit_loss.allocate(grid.units, "cross_entropy (scratch)"));
  const TokenTargets rows_targets{targets, ld_targets, ignore_index};
  const auto cross_entropy_warp_rows = softmax_rows<32, TokenTargets>;
  const auto cross_entropy_block_rows = softmax_rows<kThreads, TokenTargets>;
  if (grid.warp_rows)
    cross_entropy_warp_rows<<<grid.blocks, kThreads, 0, s>>>(logits, ld_logits, dtype, rows, vocab, rows_targets,
                                                             grad_scale, dlogits, ld_dlogits, vector, &totals->bad,
                                                             unit_loss.ptr);
  else
    cross_entropy_block_rows<<<grid.blocks, kThreads, 0, s>>>(logits, ld_logits, dtype, rows, vocab, rows_targets,
                                                              grad_scale, dlogits, ld_dlogits, vector, &totals->bad,
                                                              unit_loss.ptr);
  PLORA_TRY(launch_status("cross_entropy"));
  const auto cross_entropy_total = sum_in_order<double>;
  cross_entropy_total<<<1, kThreads, 0, s>>>(unit_loss.ptr, grid.units, &totals->bad, &totals->loss);
  PLORA_TRY(launch_status("cross_entropy (total)"));
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
