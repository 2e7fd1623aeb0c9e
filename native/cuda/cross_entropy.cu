// Token cross-entropy on the GPU (plora/cross_entropy.h). CPU reference:
// native/cpu/cross_entropy.cpp (same formulas). A first kernel counts the bad targets in the
// caller's scratch; the loss kernel reads that count on the device and writes nothing when it is
// not zero, so one copy back serves both.
//
// A row is one read pass and one write pass: a unit of threads (a warp per row for narrow rows, a
// block per row for wide vocabularies) reads it in runs of eight (runs.cuh) keeping an online max
// and sum of exponentials (fp32 exponentials, the sum in double, rescaled when the max grows),
// combines its threads' (max, sum) pairs in double in a fixed order, and then each thread writes
// the gradient of the runs it read (a second read of the same runs, from cache where the row fits).
// Each unit adds its rows' losses in row order into its own slot of stream-ordered scratch, and one
// block adds the slots in order: the loss is the same bits on every run, as is the gradient.
#include <algorithm>
#include <cstdint>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/cross_entropy.h"
#include "plora/cuda.h"
#include "reduce.cuh"
#include "runs.cuh"

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

// Vocabularies up to this many columns take a warp per row, wider ones a block per row.
constexpr int64_t kWarpRowVocab = 4096;

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

// Rows of logits [rows, vocab], kUnit threads per row (32: a warp, kThreads: the block), unit u
// taking rows u, u + units, ...; unit_loss[u] receives its rows' losses summed in row order. A
// thread reads runs lane, lane + kUnit, ... of a row and writes the same runs of dlogits, so
// dlogits may be logits. `vector`: 16-byte runs in logits and dlogits (aligned_rows).
template <int kUnit>
__global__ void __launch_bounds__(kThreads)
cross_entropy_rows(const void* logits, int64_t ld_logits, int dtype, int64_t rows, int64_t vocab,
                   const int32_t* targets, int64_t ld_targets, int32_t ignore_index, float grad_scale,
                   void* dlogits, int64_t ld_dlogits, bool vector, const Totals* totals, double* unit_loss) {
  __shared__ double shared[kWarps][2];
  __shared__ float shared_max[kWarps];
  if (totals->bad != 0) return;  // uniform over the grid
  constexpr int kUnitsPerBlock = kThreads / kUnit;
  const int lane = threadIdx.x % kUnit;
  const int64_t unit = blockIdx.x * (int64_t)kUnitsPerBlock + threadIdx.x / kUnit;
  const int64_t units = (int64_t)gridDim.x * kUnitsPerBlock, runs = (vocab + kRun - 1) / kRun;
  double loss = 0.0;  // lane 0's sum of the unit's rows, in row order
  for (int64_t i = unit; i < rows; i += units) {
    const int32_t t = targets[i * ld_targets];
    const int64_t row = i * ld_logits, out = i * ld_dlogits;
    if (t == ignore_index) {
      if (dlogits != nullptr)
        for (int64_t r = lane; r < runs; r += kUnit) {
          const float zeros[kRun] = {};
          store_run8(dlogits, dtype, out + r * kRun, out + vocab, vector, zeros);
        }
      continue;
    }
    RowPart part{-INFINITY, 0.0, 0.0f};
    for (int64_t r = lane; r < runs; r += kUnit) {
      const int64_t j = r * kRun;
      float v[kRun];
      load_run8(logits, dtype, row + j, row + vocab, vector, v);
      const int n = static_cast<int>(vocab - j < kRun ? vocab - j : kRun);
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
      load_run8(logits, dtype, row + j, row + vocab, vector, v);
#pragma unroll
      for (int q = 0; q < kRun; ++q) {
        const float p = __fmul_rn(grad_scale, expf(__fsub_rn(v[q], lse)));
        v[q] = j + q == t ? __fsub_rn(p, grad_scale) : p;
      }
      store_run8(dlogits, dtype, out + j, out + vocab, vector, v);
    }
  }
  if (lane == 0) unit_loss[unit] = loss;
}

// totals->loss = the units' losses added in unit order (thread l takes units l, l + kThreads, ...,
// then the threads in a fixed tree): one block, the same bits on every run.
__global__ void __launch_bounds__(kThreads)
cross_entropy_total(const double* unit_loss, int64_t units, Totals* totals) {
  __shared__ double partial[kWarps + 1];
  if (totals->bad != 0) return;
  double s = 0.0;
  for (int64_t u = threadIdx.x; u < units; u += kThreads) s += unit_loss[u];
  s = block_sum(s, partial);
  if (threadIdx.x == 0) totals->loss = s;
}

// Stream-ordered scratch for the units' losses, freed in stream order after its last reader.
struct UnitLosses {
  double* ptr = nullptr;
  cudaStream_t stream;
  explicit UnitLosses(cudaStream_t s) : stream(s) {}
  int allocate(int64_t units) {
    cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ptr), units * sizeof(double), stream);
    return e == cudaSuccess ? PLORA_OK : cuda_fail("cross_entropy (scratch)", e);
  }
  ~UnitLosses() {
    if (ptr != nullptr) cudaFreeAsync(ptr, stream);
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
  const bool warp_rows = vocab <= kWarpRowVocab;
  const int units_per_block = warp_rows ? kWarps : 1;
  const unsigned blocks = capped_grid((rows + units_per_block - 1) / units_per_block, kMaxBlocks);
  const int64_t units = static_cast<int64_t>(blocks) * units_per_block;
  UnitLosses unit_loss(s);
  PLORA_TRY(unit_loss.allocate(units));
  const auto cross_entropy_warp_rows = cross_entropy_rows<32>;
  const auto cross_entropy_block_rows = cross_entropy_rows<kThreads>;
  if (warp_rows)
    cross_entropy_warp_rows<<<blocks, kThreads, 0, s>>>(logits, ld_logits, dtype, rows, vocab, targets, ld_targets,
                                                        ignore_index, grad_scale, dlogits, ld_dlogits, vector, totals,
                                                        unit_loss.ptr);
  else
    cross_entropy_block_rows<<<blocks, kThreads, 0, s>>>(logits, ld_logits, dtype, rows, vocab, targets, ld_targets,
                                                         ignore_index, grad_scale, dlogits, ld_dlogits, vector, totals,
                                                         unit_loss.ptr);
  PLORA_TRY(launch_status("cross_entropy"));
  cross_entropy_total<<<1, kThreads, 0, s>>>(unit_loss.ptr, units, totals);
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
