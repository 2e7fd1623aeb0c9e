// Block reductions and the caller's scratch, shared by the CUDA reductions and losses.
//
// The functions that return a number use the caller's `scratch` (PLORA_CUDA_SCRATCH_BYTES of
// device memory, 8-byte aligned): [0, 8) a double sum, [8, 16) an unsigned 64-bit count. They
// reset it, launch, copy the result back on the stream and wait for the stream. Sums in double
// go through per-block partials in stream-ordered scratch (StreamScratch) added in a fixed order
// (sum_in_order), never through atomics: the same inputs give the same bits.
#ifndef PLORA_CUDA_REDUCE_CUH
#define PLORA_CUDA_REDUCE_CUH

#include "launch.cuh"
#include "plora/cuda.h"

namespace plora {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kReduceBlocks = 1024;  // cap for the reductions' grids: one partial per block

struct Scratch {
  double sum;
  unsigned long long count;
};
static_assert(sizeof(Scratch) <= PLORA_CUDA_SCRATCH_BYTES, "scratch layout");

// Block-wide reductions for kThreads threads; every thread gets the result. `shared` holds
// kWarps + 1 values and may be reused right after the call returns.
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

template <typename T>
__device__ inline T block_sum(T v, T* shared) {
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

// Thread 0 writes the block's total of v to parts[block], blocks numbered x first, then y:
// per-block partials that sum_in_order adds up, so that a sum never depends on which block
// finished first.
__device__ inline void store_block_sum(double v, double* parts) {
  __shared__ double partial[kWarps + 1];
  const double total = block_sum(v, partial);
  if (threadIdx.x == 0) parts[blockIdx.y * static_cast<int64_t>(gridDim.x) + blockIdx.x] = total;
}

// *out = parts[0] + ... + parts[count - 1] in a fixed order (thread t adds parts t, t + kThreads,
// ..., then block_sum's tree): one block of kThreads, the same bits on every run. Writes nothing
// when skip is not null and *skip is not zero (the parts were never written).
template <class Sum>
__global__ void __launch_bounds__(kThreads)
sum_in_order(const Sum* parts, int64_t count, const unsigned long long* skip, Sum* out) {
  __shared__ Sum partial[kWarps + 1];
  if (skip != nullptr && *skip != 0) return;
  Sum s = 0;
  for (int64_t p = threadIdx.x; p < count; p += kThreads) s += parts[p];
  s = block_sum(s, partial);
  if (threadIdx.x == 0) *out = s;
}

inline int reset_scratch(Scratch* scratch, cudaStream_t s, const char* what) {
  cudaError_t e = cudaMemsetAsync(scratch, 0, sizeof(Scratch), s);
  if (e != cudaSuccess) return cuda_fail(what, e);
  return PLORA_OK;
}

// Copies the scratch back to *host and waits for the stream.
inline int read_scratch(const Scratch* scratch, Scratch* host, cudaStream_t s, const char* what) {
  cudaError_t e = cudaMemcpyAsync(host, scratch, sizeof *host, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return cuda_fail(what, e);
  return PLORA_OK;
}

inline unsigned reduce_blocks(int64_t n) {
  return capped_grid(blocks_for(n, kThreads), kReduceBlocks);
}

}  // namespace plora

#endif
