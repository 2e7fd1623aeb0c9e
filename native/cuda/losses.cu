// Kernel family losses on the GPU: MSE and softmax cross-entropy (sums in double, the same bits on
// every run). CPU reference: native/cpu/losses.cpp. Scratch, block reductions and the fixed-order
// sum of per-block partials: reduce.cuh; the cross-entropy's rows (one read and one write pass
// each): softmax_rows.cuh.
#include "../common/contracts.h"
#include "plora/losses.h"
#include "reduce.cuh"
#include "softmax_rows.cuh"

using namespace plora;

namespace {

// parts[block] = the block's sum of (pred - target)^2 in double; dpred = grad_scale * (pred - target)
// when not null.
__global__ void __launch_bounds__(kThreads)
mse_kernel(const void* pred, int64_t ld_pred, const void* target, int64_t ld_target, int dtype, int64_t rows,
           int64_t cols, float grad_scale, void* dpred, int64_t ld_dpred, double* parts) {
  const int64_t n = rows * cols;
  double s = 0.0;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e / cols, j = e % cols;
    const float d = __fsub_rn(load_f32(pred, dtype, i * ld_pred + j), load_f32(target, dtype, i * ld_target + j));
    s += static_cast<double>(d) * d;
    if (dpred != nullptr) store_f32(dpred, dtype, i * ld_dpred + j, __fmul_rn(grad_scale, d));
  }
  store_block_sum(s, parts);
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

// Row i's class (check_labels_kernel vouched for every label).
struct ClassLabels {
  const float* labels;
  __device__ int64_t operator()(int64_t i) const { return static_cast<int64_t>(labels[i]); }
};

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
  const unsigned blocks = reduce_blocks(rows * cols);
  StreamScratch<double> parts(s);
  PLORA_TRY(parts.allocate(blocks, "mse (scratch)"));
  mse_kernel<<<blocks, kThreads, 0, s>>>(pred, ld_pred, target, ld_target, dtype, rows, cols, grad_scale, dpred,
                                         ld_dpred, parts.ptr);
  PLORA_TRY(launch_status("mse"));
  const auto mse_total = sum_in_order<double>;
  mse_total<<<1, kThreads, 0, s>>>(parts.ptr, blocks, nullptr, &dev->sum);
  PLORA_TRY(launch_status("mse (total)"));
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
  // The rows' kernel reads the count of bad labels on the device and writes nothing when it is
  // not zero, so one copy back and one wait serve both.
  check_labels_kernel<<<reduce_blocks(rows), kThreads, 0, s>>>(labels, rows, static_cast<float>(cols),
                                                               &dev->count);
  PLORA_TRY(launch_status("softmax_xent (labels)"));
  const bool vector = aligned_rows(logits, ld_logits, dtype) && (dlogits == nullptr || aligned_rows(dlogits, ld_dlogits, dtype));
  const SoftmaxRowsGrid grid(rows, cols);
  StreamScratch<double> unit_loss(s);
  PLORA_TRY(unit_loss.allocate(grid.units, "softmax_xent (scratch)"));
  const float grad_scale = static_cast<float>(1.0 / static_cast<double>(rows));
  const auto softmax_xent_warp_rows = softmax_rows<32, ClassLabels>;
  const auto softmax_xent_block_rows = softmax_rows<kThreads, ClassLabels>;
  if (grid.warp_rows)
    softmax_xent_warp_rows<<<grid.blocks, kThreads, 0, s>>>(logits, ld_logits, dtype, rows, cols, ClassLabels{labels},
                                                            grad_scale, dlogits, ld_dlogits, vector, &dev->count,
                                                            unit_loss.ptr);
  else
    softmax_xent_block_rows<<<grid.blocks, kThreads, 0, s>>>(logits, ld_logits, dtype, rows, cols, ClassLabels{labels},
                                                             grad_scale, dlogits, ld_dlogits, vector, &dev->count,
                                                             unit_loss.ptr);
  PLORA_TRY(launch_status("softmax_xent"));
  const auto softmax_xent_total = sum_in_order<double>;
  softmax_xent_total<<<1, kThreads, 0, s>>>(unit_loss.ptr, grid.units, &dev->count, &dev->sum);
  PLORA_TRY(launch_status("softmax_xent (total)"));
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
