// Softmax cross-entropy over rows of logits, shared by the LM head's loss (cross_entropy.cu) and
// the classifier loss (losses.cu); each supplies its targets and its own check of them.
//
// A row is one read pass and one write pass: a unit of threads (a warp per row for narrow rows, a
// block per row for wide ones) reads it in runs of eight (runs.cuh) keeping an online max and sum
// of exponentials (fp32 exponentials, the sum in double, rescaled when the max grows), combines
// its threads' (max, sum) pairs in double in a fixed order, and then each thread writes the
// gradient of the runs it read (a second read of the same runs, from cache where the row fits).
// Each unit adds its rows' losses in row order into its own slot of stream-ordered scratch, and
// sum_in_order (reduce.cuh) adds the slots in order: the loss is the same bits on every run, as is
// the gradient.
#ifndef PLORA_CUDA_SOFTMAX_ROWS_CUH
#define PLORA_CUDA_SOFTMAX_ROWS_CUH

#include <cstdint>

#include "reduce.cuh"
#include "runs.cuh"

namespace plora {

// Rows up to this many columns take a warp per row, wider ones a block per row.
constexpr int64_t kWarpRowCols = 4096;
constexpr int64_t kMaxRowBlocks = 1024;

// A thread's share of a row: m the largest logit it read, s = sum of e^(x - m) over its logits.
struct RowPart {
  float m;
  double s;
  float target;  // the target's logit where this thread read it, 0 elsewhere
};

// Folds logits v[0 .. n) (n <= kRun) into the thread's part: one rescale when the max grows.
__device__ __forceinline__ void fold_run(const float (&v)[kRun], int n, RowPart& part) {
  float run_max = part.m;
#pragma unroll
  for (int q = 0; q < kRun; ++q)
    if (q < n) run_max = fmaxf(run_max, v[q]);
  if (run_max > part.m) {
    part.s *= exp(static_cast<double>(part.m) - static_cast<double>(run_max));
    part.m = run_max;
  }
#pragma unroll
  for (int q = 0; q < kRun; ++q)
    if (q < n) part.s += static_cast<double>(expf(__fsub_rn(v[q], part.m)));
}

// The row's (max, sum, target logit) over the kUnit threads of a unit, every thread getting it:
// the max first, then each thread's sum rescaled to it and summed in double, in a fixed order
// (butterfly shuffles within a warp, then the warps in order through `shared`).
template <int kUnit>
__device__ __forceinline__ RowPart combine(RowPart part, double (&shared)[kWarps][2], float (&shared_max)[kWarps]) {
  float m = part.m;
  for (int offset = 16; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
  if (kUnit > 32) {
    if (threadIdx.x % 32 == 0) shared_max[threadIdx.x / 32] = m;
    __syncthreads();
    m = shared_max[0];
    for (int w = 1; w < kWarps; ++w) m = fmaxf(m, shared_max[w]);
  }
  // threads that read nothing have m = -inf and s = 0: they add 0
  double s = part.m == -INFINITY ? 0.0 : part.s * exp(static_cast<double>(part.m) - static_cast<double>(m));
  double target = part.target;  // one thread holds it, the others add 0
  for (int offset = 16; offset > 0; offset /= 2) {
    s += __shfl_xor_sync(0xffffffffu, s, offset);
    target += __shfl_xor_sync(0xffffffffu, target, offset);
  }
  if (kUnit > 32) {
    if (threadIdx.x % 32 == 0) {
      shared[threadIdx.x / 32][0] = s;
      shared[threadIdx.x / 32][1] = target;
    }
    __syncthreads();
    s = shared[0][0];
    target = shared[0][1];
    for (int w = 1; w < kWarps; ++w) {
      s += shared[w][0];
      target += shared[w][1];
    }
    __syncthreads();  // shared and shared_max are free for the next row
  }
  return RowPart{m, s, static_cast<float>(target)};
}

// Rows of logits [rows, cols], kUnit threads per row (32: a warp, kThreads: the block), unit u
// taking rows u, u + units, ...; unit_loss[u] receives its rows' losses (logsumexp - the target's
// logit) summed in row order, and dlogits (when not null) grad_scale * (softmax - one-hot).
// targets(i) is row i's target column, or -1 for a row that counts for nothing (its gradient 0).
// A thread reads runs lane, lane + kUnit, ... of a row and writes the same runs of dlogits, so
// dlogits may be logits. `vector`: 16-byte runs in logits and dlogits (aligned_rows). Writes
// nothing when *bad is not zero (the caller's check of the targets found some out of range).
template <int kUnit, class Targets>
__global__ void __launch_bounds__(kThreads)
softmax_rows(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t cols, Targets targets,
             float grad_scale, void* dlogits, int64_t ld_dlogits, bool vector, const unsigned long long* bad,
             double* unit_loss) {
  __shared__ double shared[kWarps][2];
  __shared__ float shared_max[kWarps];
  if (*bad != 0) return;  // uniform over the grid
  constexpr int kUnitsPerBlock = kThreads / kUnit;
  const int lane = threadIdx.x % kUnit;
  const int64_t unit = blockIdx.x * (int64_t)kUnitsPerBlock + threadIdx.x / kUnit;
  const int64_t units = (int64_t)gridDim.x * kUnitsPerBlock, runs = (cols + kRun - 1) / kRun;
  double loss = 0.0;  // lane 0's sum of the unit's rows, in row order
  for (int64_t i = unit; i < rows; i += units) {
    const int64_t t = targets(i);
    const int64_t row = i * ld_logits, out = i * ld_dlogits;
    if (t < 0) {
      if (dlogits != nullptr)
        for (int64_t r = lane; r < runs; r += kUnit) {
          const float zeros[kRun] = {};
          store_run8(dlogits, dtype, out + r * kRun, out + cols, vector, zeros);
        }
      continue;
    }
    RowPart part{-INFINITY, 0.0, 0.0f};
    for (int64_t r = lane; r < runs; r += kUnit) {
      const int64_t j = r * kRun;
      float v[kRun];
      load_run8(logits, dtype, row + j, row + cols, vector, v);
      const int n = static_cast<int>(cols - j < kRun ? cols - j : kRun);
      fold_run(v, n, part);
#pragma unroll
      for (int q = 0; q < kRun; ++q)
        if (j + q == t) part.target = v[q];  // selected, not indexed: v stays in registers
    }
    const RowPart total = combine<kUnit>(part, shared, shared_max);
    const double lse_exact = total.m + log(total.s);
    if (lane == 0) loss += lse_exact - total.target;
    if (dlogits == nullptr) continue;
    const float lse = static_cast<float>(lse_exact);
    for (int64_t r = lane; r < runs; r += kUnit) {
      const int64_t j = r * kRun;
      float v[kRun];
      load_run8(logits, dtype, row + j, row + cols, vector, v);
#pragma unroll
      for (int q = 0; q < kRun; ++q) {
        const float p = __fmul_rn(grad_scale, expf(__fsub_rn(v[q], lse)));
        v[q] = j + q == t ? __fsub_rn(p, grad_scale) : p;
      }
      store_run8(dlogits, dtype, out + j, out + cols, vector, v);
    }
  }
  if (lane == 0) unit_loss[unit] = loss;
}

// The launch of softmax_rows over rows x cols: a warp or a block per row, `units` in all (the
// slots of unit_loss that sum_in_order adds).
struct SoftmaxRowsGrid {
  bool warp_rows;
  unsigned blocks;
  int64_t units;
  SoftmaxRowsGrid(int64_t rows, int64_t cols) : warp_rows(cols <= kWarpRowCols) {
    const int units_per_block = warp_rows ? kWarps : 1;
    blocks = capped_grid((rows + units_per_block - 1) / units_per_block, kMaxRowBlocks);
    units = static_cast<int64_t>(blocks) * units_per_block;
  }
};

}  // namespace plora

#endif
