// SwiGLU on the GPU (plora/swiglu.h). CPU reference: native/cpu/swiglu.cpp (same formulas).
// Rows along the grid's y dimension and columns along x, both grid-stride, so there is no
// 64-bit division per element.
#include <algorithm>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/swiglu.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

__global__ void __launch_bounds__(kThreads)
swiglu_kernel(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, void* h, int64_t ld_h, int dtype,
              int64_t rows, int64_t cols) {
  for (int64_t i = blockIdx.y; i < rows; i += gridDim.y)
    for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < cols;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const float g = load_f32(gate, dtype, i * ld_gate + j), u = load_f32(up, dtype, i * ld_up + j);
      store_f32(h, dtype, i * ld_h + j, round_f32(dtype, g * sigmoid(g)) * u);
    }
}

__global__ void __launch_bounds__(kThreads)
swiglu_backward_kernel(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, const void* dh, int64_t ld_dh,
                       void* dgate, int64_t ld_dgate, void* dup, int64_t ld_dup, int dtype, int64_t rows,
                       int64_t cols) {
  for (int64_t i = blockIdx.y; i < rows; i += gridDim.y)
    for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < cols;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const float g = load_f32(gate, dtype, i * ld_gate + j), u = load_f32(up, dtype, i * ld_up + j);
      const float d = load_f32(dh, dtype, i * ld_dh + j);
      const float s = sigmoid(g);
      // both inputs are read before either output is written: dgate may be gate, dup may be up
      store_f32(dgate, dtype, i * ld_dgate + j, d * u * (s * (1.0f + g * (1.0f - s))));
      store_f32(dup, dtype, i * ld_dup + j, d * (g * s));
    }
}

dim3 grid_2d(int64_t rows, int64_t cols) {
  return dim3(capped_grid(blocks_for(cols, kThreads), 1024), capped_grid(std::max<int64_t>(rows, 1), 65535));
}

}  // namespace

extern "C" {

int plora_cuda_swiglu(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, void* h, int64_t ld_h,
                      int dtype, int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_swiglu_args(gate, ld_gate, up, ld_up, "h", h, ld_h, dtype, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  swiglu_kernel<<<grid_2d(rows, cols), kThreads, 0, as_stream(stream)>>>(gate, ld_gate, up, ld_up, h, ld_h, dtype,
                                                                         rows, cols);
  return launch_status("swiglu");
}

int plora_cuda_swiglu_backward(const void* gate, int64_t ld_gate, const void* up, int64_t ld_up, const void* dh,
                               int64_t ld_dh, void* dgate, int64_t ld_dgate, void* dup, int64_t ld_dup, int dtype,
                               int64_t rows, int64_t cols, void* stream) {
  PLORA_TRY(check_swiglu_args(gate, ld_gate, up, ld_up, "dh", dh, ld_dh, dtype, rows, cols));
  PLORA_TRY(check_matrix("dgate", dgate, ld_dgate, rows, cols));
  PLORA_TRY(check_matrix("dup", dup, ld_dup, rows, cols));
  if (rows == 0 || cols == 0) return ok();
  swiglu_backward_kernel<<<grid_2d(rows, cols), kThreads, 0, as_stream(stream)>>>(
      gate, ld_gate, up, ld_up, dh, ld_dh, dgate, ld_dgate, dup, ld_dup, dtype, rows, cols);
  return launch_status("swiglu backward");
}

}  // extern "C"
