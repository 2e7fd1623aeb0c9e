// Launch helpers shared by the CUDA kernel files.
#ifndef PLORA_CUDA_LAUNCH_CUH
#define PLORA_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../common/checks.h"

namespace plora {

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

// Reports a failed launch (bad configuration, no device, sticky error) as PLORA_ERR_CUDA.
inline int launch_status(const char* kernel) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(PLORA_ERR_CUDA, "%s: %s", kernel, cudaGetErrorString(e));
  return ok();
}

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535 * 16));
}

}  // namespace plora

#endif
