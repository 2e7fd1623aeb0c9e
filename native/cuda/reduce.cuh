// Block-wide sums for the transformer kernel files: warp shuffles, then one pass over the warps'
// partials, in a fixed order (the result does not depend on timing).
#ifndef PLORA_CUDA_REDUCE_CUH
#define PLORA_CUDA_REDUCE_CUH

#include <cuda_runtime.h>

namespace plora {

template <typename T>
__device__ __forceinline__ T warp_sum_all(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// The sum of v over a block of kThreads threads (a multiple of 32), returned to every thread.
// `shared` holds kThreads / 32 values; it may be reused right after the call.
template <int kThreads, typename T>
__device__ __forceinline__ T block_sum_all(T v, T* shared) {
  constexpr int kWarps = kThreads / 32;
  v = warp_sum_all(v);
  if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = v;
  __syncthreads();
  T total = shared[0];
  for (int w = 1; w < kWarps; ++w) total += shared[w];
  __syncthreads();
  return total;
}

}  // namespace plora

#endif
