// Rotary position embedding on the GPU (plora/rope.h). CPU reference: native/cpu/rope.cpp (same
// formulas; cos and sin in double, rounded to fp32 and then to the dtype). A thread per (row, pair)
// rotates that pair in every head; rows along the grid's y dimension.
#include <algorithm>

#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/rope.h"

using namespace plora;

namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads)
rope_kernel(void* x, int64_t ld_x, int dtype, int64_t rows, int64_t heads, int64_t head_dim, const int32_t* positions,
            int64_t ld_pos, const float* inv_freq, bool backward) {
  const int64_t half = head_dim / 2;
  for (int64_t t = blockIdx.y; t < rows; t += gridDim.y) {
    const float position = static_cast<float>(positions[t * ld_pos]);
    for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < half;
         j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      double sd, cd;
      sincos(static_cast<double>(__fmul_rn(position, inv_freq[j])), &sd, &cd);
      const float c = round_f32(dtype, static_cast<float>(cd)), s = round_f32(dtype, static_cast<float>(sd));
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t i1 = t * ld_x + h * head_dim + j, i2 = i1 + half;
        const float x1 = load_f32(x, dtype, i1), x2 = load_f32(x, dtype, i2);
        if (backward) {
          store_f32(x, dtype, i1, x1 * c + x2 * s);
          store_f32(x, dtype, i2, x2 * c - x1 * s);
        } else {
          store_f32(x, dtype, i1, round_f32(dtype, x1 * c) + round_f32(dtype, -x2 * s));
          store_f32(x, dtype, i2, round_f32(dtype, x2 * c) + round_f32(dtype, x1 * s));
        }
      }
    }
  }
}

int rotate(bool backward, void* x, int64_t ld_x, int dtype, int64_t rows, int64_t heads, int64_t head_dim,
           const int32_t* positions, int64_t ld_pos, const float* inv_freq, void* stream, const char* what) {
  PLORA_TRY(check_rope_args(x, ld_x, dtype, rows, heads, head_dim, positions, ld_pos, inv_freq));
  if (rows == 0 || heads == 0 || head_dim == 0) return ok();
  const dim3 grid(capped_grid(blocks_for(head_dim / 2, kThreads), 1024), capped_grid(rows, 65535));
  rope_kernel<<<grid, kThreads, 0, as_stream(stream)>>>(x, ld_x, dtype, rows, heads, head_dim, positions, ld_pos,
                                                        inv_freq, backward);
  return launch_status(what);
}

}  // namespace

extern "C" {

int plora_cuda_rope(void* x, int64_t ld_x, int dtype, int64_t rows, int64_t heads, int64_t head_dim,
                    const int32_t* positions, int64_t ld_pos, const float* inv_freq, void* stream) {
  return rotate(false, x, ld_x, dtype, rows, heads, head_dim, positions, ld_pos, inv_freq, stream, "rope");
}

int plora_cuda_rope_backward(void* dx, int64_t ld_dx, int dtype, int64_t rows, int64_t heads, int64_t head_dim,
                             const int32_t* positions, int64_t ld_pos, const float* inv_freq, void* stream) {
  return rotate(true, dx, ld_dx, dtype, rows, heads, head_dim, positions, ld_pos, inv_freq, stream, "rope backward");
}

}  // extern "C"
