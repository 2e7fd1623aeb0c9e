// Launch helpers shared by the CUDA kernel files.
#ifndef PLORA_CUDA_LAUNCH_CUH
#define PLORA_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "../common/checks.h"

namespace plora {

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

// The caller's scratch (PLORA_CUDA_SCRATCH_BYTES of device memory) of the kernels that return
// numbers or counts to the host: present and 8-byte aligned.
inline int check_scratch(void* scratch) {
  if (scratch == nullptr) return fail(PLORA_ERR_INVALID, "scratch: null pointer");
  if (reinterpret_cast<uintptr_t>(scratch) % 8 != 0)
    return fail(PLORA_ERR_INVALID, "scratch: not 8-byte aligned");
  return PLORA_OK;
}

// Reports a failed launch (bad configuration, no device, sticky error) as PLORA_ERR_CUDA.
inline int launch_status(const char* kernel) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(PLORA_ERR_CUDA, "%s: %s", kernel, cudaGetErrorString(e));
  return ok();
}

// A failed runtime call: clears the runtime's last error (so the next launch is not blamed for
// it) and records the message.
inline int cuda_fail(const char* what, cudaError_t e) {
  cudaGetLastError();
  return fail(PLORA_ERR_CUDA, "%s: %s", what, cudaGetErrorString(e));
}

// The grid of a launch whose grid-stride loop covers what `wanted` blocks would: at most `cap`.
// A test build may define PLORA_CUDA_LAUNCH_CAP(wanted, cap) to lower the cap (the CUDA simulator
// does, so that small shapes turn every grid-stride loop more than once); this build does not.
inline unsigned capped_grid(int64_t wanted, int64_t cap) {
#ifdef PLORA_CUDA_LAUNCH_CAP
  cap = PLORA_CUDA_LAUNCH_CAP(wanted, cap);
#endif
  return static_cast<unsigned>(std::min<int64_t>(wanted, cap));
}

// Device memory for `count` values of T (at least one), allocated and freed in stream order: the
// free is queued behind the kernels that use it, so the host never waits for them.
template <class T>
struct StreamScratch {
  T* ptr = nullptr;
  cudaStream_t stream;
  explicit StreamScratch(cudaStream_t s) : stream(s) {}
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
  int allocate(int64_t count, const char* what) {
    cudaError_t e = cudaMallocAsync(reinterpret_cast<void**>(&ptr), std::max<int64_t>(count, 1) * sizeof(T), stream);
    return e == cudaSuccess ? PLORA_OK : cuda_fail(what, e);
  }
  ~StreamScratch() {
    if (ptr != nullptr) cudaFreeAsync(ptr, stream);
  }
};

// Blocks for one element per thread: at least one.
inline int64_t blocks_for(int64_t n, int threads) { return std::max<int64_t>((n + threads - 1) / threads, 1); }

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(int64_t n, int threads) { return capped_grid(blocks_for(n, threads), 65535 * 16); }

// The block-wide sums of kTile per-thread partial dot products: out[base + c] = scaling * sum over
// the block of acc[c], for c < tile (warp shuffles, then one pass over the warps' partials).
// Every thread of the block must call it.
template <int kWarps, int kTile>
__device__ __forceinline__ void store_block_sums(const float (&acc)[kTile], float (&partial)[kWarps][kTile],
                                                 int tile, void* out, int dtype, int64_t base, float scaling) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int c = 0; c < kTile; ++c) {
    float s = acc[c];
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
    if (lane == 0) partial[warp][c] = s;
  }
  __syncthreads();
  if (threadIdx.x < tile) {
    float s = 0.0f;
    for (int w = 0; w < kWarps; ++w) s += partial[w][threadIdx.x];
    store_f32(out, dtype, base + threadIdx.x, scaling * s);
  }
  __syncthreads();
}

}  // namespace plora

#endif
