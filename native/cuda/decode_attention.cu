// Attention of new tokens to a key/value cache on the GPU (plora/decode_attention.h), split-K
// within a block. CPU reference: native/cpu/decode_attention.cpp.
//
// A block of four warps per (new token, head), in a grid-stride loop over the pairs. Warp w takes
// the chunks of 32 cache rows w, w + 4, ...: lane = cache row for the score q·k, then lane = a
// column slice (columns lane, lane + 32, ...) for the weighted values, each row's weight taken
// from its lane with a shuffle; each warp keeps its own running max, sum and accumulators. The
// four partial softmaxes are then merged in a fixed order through shared memory: deterministic.
// Only the visible rows (0 .. past + i) are read.
#include "../common/decode_attention_contract.h"
#include "launch.cuh"
#include "warp.cuh"
#include "plora/cuda.h"
#include "plora/decode_attention.h"

using namespace plora;

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;


struct Dims {
  int64_t queries, past;
  int heads, kv_heads, dim;
  float scale;
};

// kD: head_dim padded to 64, 128 or 256 (the accumulators of a lane: kD / 32 columns).
template <int kD>
__global__ void __launch_bounds__(kThreads)
decode_kernel(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v, int64_t ld_v, int dtype,
              Dims dims, void* out, int64_t ld_out) {
  constexpr int kC = kD / 32;
  __shared__ float qs[kD];
  __shared__ float part_m[kWarps];
  __shared__ float part_l[kWarps];
  __shared__ float part_o[kWarps][kD];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t pairs = dims.queries * dims.heads;
  for (int64_t pair = blockIdx.x; pair < pairs; pair += gridDim.x) {
    const int64_t i = pair / dims.heads;
    const int h = static_cast<int>(pair % dims.heads), g = h / (dims.heads / dims.kv_heads);
    const int64_t qcol = int64_t{h} * dims.dim, kcol = int64_t{g} * dims.dim, visible = dims.past + i + 1;
    __syncthreads();  // the previous pair's partials are merged
    for (int d = threadIdx.x; d < kD; d += kThreads)
      qs[d] = d < dims.dim ? dims.scale * load_f32(q, dtype, i * ld_q + qcol + d) : 0.0f;
    __syncthreads();
    float m = -INFINITY, l = 0.0f, o[kC];
#pragma unroll
    for (int c = 0; c < kC; ++c) o[c] = 0.0f;
    for (int64_t k0 = int64_t{warp} * 32; k0 < visible; k0 += kThreads) {  // uniform over the warp
      const int64_t row = k0 + lane;
      float s = -INFINITY;
      if (row < visible) {
        s = 0.0f;
        for (int d = 0; d < dims.dim; ++d) s = fmaf(qs[d], load_f32(k, dtype, row * ld_k + kcol + d), s);
      }
      const float top = fmaxf(m, warp_all_max(s));  // finite: row k0 is visible
      const float p = row < visible ? expf(s - top) : 0.0f;
      const float alpha = expf(m - top);  // 0 while m = -inf
      l = l * alpha + warp_all_sum(p);
      m = top;
#pragma unroll
      for (int c = 0; c < kC; ++c) o[c] *= alpha;
      const int rows = static_cast<int>(visible - k0 < 32 ? visible - k0 : 32);
      for (int j = 0; j < rows; ++j) {
        const float w = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          const int d = lane + 32 * c;
          if (d < dims.dim) o[c] = fmaf(w, load_f32(v, dtype, (k0 + j) * ld_v + kcol + d), o[c]);
        }
      }
    }
    if (lane == 0) {
      part_m[warp] = m;
      part_l[warp] = l;
    }
#pragma unroll
    for (int c = 0; c < kC; ++c) part_o[warp][lane + 32 * c] = o[c];
    __syncthreads();
    float top = part_m[0];
    for (int w = 1; w < kWarps; ++w) top = fmaxf(top, part_m[w]);
    float sum = 0.0f, factor[kWarps];
    for (int w = 0; w < kWarps; ++w) {  // a warp that saw no row has m = -inf: factor 0
      factor[w] = expf(part_m[w] - top);
      sum += part_l[w] * factor[w];
    }
    for (int d = threadIdx.x; d < dims.dim; d += kThreads) {
      float acc = 0.0f;
      for (int w = 0; w < kWarps; ++w) acc += part_o[w][d] * factor[w];
      store_f32(out, dtype, i * ld_out + qcol + d, acc / sum);
    }
  }
}

struct Args {
  const void *q, *k, *v;
  int64_t ld_q, ld_k, ld_v;
  int dtype;
  Dims dims;
  void* out;
  int64_t ld_out;
};

template <int kD>
void launch(const Args& a, cudaStream_t s) {
  const unsigned grid = capped_grid(a.dims.queries * a.dims.heads, 65535);
  // launched through a pointer: the simulator's launch rewrite takes a plain name
  const auto decode_attention = decode_kernel<kD>;
  decode_attention<<<grid, kThreads, 0, s>>>(a.q, a.ld_q, a.k, a.ld_k, a.v, a.ld_v, a.dtype, a.dims, a.out,
                                             a.ld_out);
}

}  // namespace

extern "C" {

int plora_cuda_decode_attention(const void* q, int64_t ld_q, const void* k_cache, int64_t ld_k, const void* v_cache,
                                int64_t ld_v, int dtype, int64_t queries, int64_t past, int heads, int kv_heads,
                                int head_dim, float scale, void* out, int64_t ld_out, void* stream) {
  PLORA_TRY(check_decode_attention(q, ld_q, k_cache, ld_k, v_cache, ld_v, dtype, queries, past, heads, kv_heads,
                                   head_dim, scale, out, ld_out));
  if (queries == 0) return ok();
  const Args a{q, k_cache, v_cache, ld_q, ld_k, ld_v, dtype, {queries, past, heads, kv_heads, head_dim, scale},
               out, ld_out};
  cudaStream_t s = as_stream(stream);
  if (head_dim <= 64) launch<64>(a, s);
  else if (head_dim <= 128) launch<128>(a, s);
  else launch<256>(a, s);
  return launch_status("decode_attention");
}

}  // extern "C"
