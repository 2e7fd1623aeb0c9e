// Warp-wide reductions whose result every lane gets (butterfly shuffles), for the attention
// kernels' online softmax: a running max and a sum over the 32 lanes of a full warp.
#ifndef PLORA_CUDA_WARP_CUH
#define PLORA_CUDA_WARP_CUH

namespace plora {

__device__ __forceinline__ float warp_all_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

__device__ __forceinline__ float warp_all_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

}  // namespace plora

#endif
