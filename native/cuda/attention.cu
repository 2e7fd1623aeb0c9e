// Causal grouped-query attention on the GPU (plora/attention.h), FlashAttention-2 in plain fp32
// FMAs (no tensor cores yet). CPU reference: native/cpu/attention.cpp (same algorithm).
//
// Blocks of four warps. A warp works on a few rows of its block's tile at once, two ways:
//   - lane = the other side's row: scores s = q·k, one per lane, with the warp's own rows read from
//     shared memory as broadcasts and the other tile stored transposed ([kD][33]: conflict-free);
//   - lane = a column slice: accumulators of head_dim values (columns lane, lane + 32, ...) updated
//     by the 32 rows of the other tile, each row's weight taken from its lane with a shuffle.
// Forward and dq: one block per (query tile, head), over the key tiles of 32 its documents reach;
// dk and dv: one block per (key tile, kv head), over its query heads and the query tiles of 32
// that see it. Every output element is summed by one thread in a fixed order: deterministic.
// Shared memory stays under the 48 KiB of a static allocation for every head_dim: kD = 64, 128 or
// 256 (head_dim padded with zeros) sets how many rows a block takes.
//
// seq_start is checked first on the device (rows that break the document rule counted into the
// scratch); the attention kernels then do nothing when the count is not zero, and the host reads
// it back, so a bad seq_start is refused without writing and without an out-of-range read.
#include "../common/attention_contract.h"
#include "launch.cuh"
#include "warp.cuh"
#include "plora/attention.h"
#include "plora/cuda.h"

using namespace plora;

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kSpan = 32;  // rows of the other side per step: one per lane


// seq_start[t] within [0, t]: already checked, clamped all the same so that no value reads outside
__device__ __forceinline__ int64_t doc_start(const int32_t* seq_start, int64_t t) {
  const int64_t s = seq_start[t];
  return s < 0 ? 0 : (s > t ? t : s);
}

// tile[i][d] = factor · x[row0 + i][col0 + d] (zeros past `rows` tokens and `dim` columns), kRowsT
// rows of kD; `ld_tile` the tile's row stride. Consecutive threads read consecutive columns.
template <int kD>
__device__ void load_rows(float* tile, int ld_tile, int rows_t, const void* x, int dtype, int64_t ld, int64_t row0,
                          int64_t tokens, int64_t col0, int dim, float factor) {
  for (int e = threadIdx.x; e < rows_t * kD; e += kThreads) {
    const int i = e / kD, d = e % kD;
    const int64_t t = row0 + i;
    tile[i * ld_tile + d] = t < tokens && d < dim ? factor * load_f32(x, dtype, t * ld + col0 + d) : 0.0f;
  }
}

// The transpose: tile[d][i] (row stride kSpan + 1) = factor · x[row0 + i][col0 + d], kSpan rows.
template <int kD>
__device__ void load_columns(float (*tile)[kSpan + 1], const void* x, int dtype, int64_t ld, int64_t row0,
                             int64_t tokens, int64_t col0, int dim, float factor) {
  for (int e = threadIdx.x; e < kSpan * kD; e += kThreads) {
    const int i = e / kD, d = e % kD;
    const int64_t t = row0 + i;
    tile[d][i] = t < tokens && d < dim ? factor * load_f32(x, dtype, t * ld + col0 + d) : 0.0f;
  }
}

// Σ_d row[d] · columns[d][lane]
template <int kD>
__device__ __forceinline__ float dot_column(const float* row, const float (*columns)[kSpan + 1], int lane) {
  float acc = 0.0f;
#pragma unroll 8
  for (int d = 0; d < kD; ++d) acc = fmaf(row[d], columns[d][lane], acc);
  return acc;
}

// acc[c] += Σ_j weight_j · tile[lane + 32c][j], weight_j the `weight` of lane j (tile transposed)
template <int kD>
__device__ __forceinline__ void add_weighted_columns(float (&acc)[kD / 32], float weight,
                                                     const float (*tile)[kSpan + 1], int lane) {
  for (int j = 0; j < kSpan; ++j) {
    const float w = __shfl_sync(0xffffffffu, weight, j);
#pragma unroll
    for (int c = 0; c < kD / 32; ++c) acc[c] = fmaf(w, tile[lane + 32 * c][j], acc[c]);
  }
}

// Counts the rows of seq_start that neither start a document nor continue the previous row's.
__global__ void __launch_bounds__(kThreads)
check_seq_start_kernel(const int32_t* seq_start, int64_t tokens, unsigned long long* bad) {
  unsigned long long count = 0;
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < tokens; t += (int64_t)gridDim.x * blockDim.x)
    count += !seq_start_row_valid(seq_start, t);
  for (int offset = 16; offset > 0; offset /= 2) count += __shfl_xor_sync(0xffffffffu, count, offset);
  if (threadIdx.x % 32 == 0 && count != 0) atomicAdd(bad, count);
}

struct Dims {
  int64_t tokens;
  int heads, kv_heads, dim;
  float scale;
};

// Forward: block (query tile of kWarps·kRows rows, head h). Each warp keeps kRows rows' running
// max m, sum l and output accumulators in registers.
template <int kD, int kRows>
__global__ void __launch_bounds__(kThreads)
forward_kernel(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v, int64_t ld_v,
               const int32_t* seq_start, int dtype, Dims dims, void* out, int64_t ld_out, float* lse, int64_t ld_lse,
               const unsigned long long* bad) {
  constexpr int kTile = kWarps * kRows, kC = kD / 32;
  __shared__ float qs[kTile][kD];
  __shared__ float kv[kD][kSpan + 1];  // keys transposed, then values as rows [kSpan][kD]
  if (*bad != 0) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int h = blockIdx.y, g = h / (dims.heads / dims.kv_heads);
  const int64_t q0 = blockIdx.x * (int64_t)kTile, q_end = min(q0 + kTile, dims.tokens);
  const int64_t qcol = int64_t{h} * dims.dim, kcol = int64_t{g} * dims.dim;
  load_rows<kD>(&qs[0][0], kD, kTile, q, dtype, ld_q, q0, dims.tokens, qcol, dims.dim, dims.scale);
  float m[kRows], l[kRows], o[kRows][kC];
  int64_t lo[kRows];
  #pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t t = q0 + warp * kRows + r;
    lo[r] = t < dims.tokens ? doc_start(seq_start, t) : t;
    m[r] = -INFINITY;
    l[r] = 0.0f;
    #pragma unroll
    for (int c = 0; c < kC; ++c) o[r][c] = 0.0f;
  }
  const float* vs = &kv[0][0];
  for (int64_t k0 = doc_start(seq_start, q0); k0 < q_end; k0 += kSpan) {
    __syncthreads();  // the previous tile's values are used up (and qs is loaded)
    load_columns<kD>(kv, k, dtype, ld_k, k0, dims.tokens, kcol, dims.dim, 1.0f);
    __syncthreads();
    float s[kRows];
    const int64_t key = k0 + lane;
    #pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t t = q0 + warp * kRows + r;
      const float score = dot_column<kD>(qs[warp * kRows + r], kv, lane);
      s[r] = t < dims.tokens && key >= lo[r] && key <= t ? score : -INFINITY;
    }
    __syncthreads();
    load_rows<kD>(&kv[0][0], kD, kSpan, v, dtype, ld_v, k0, dims.tokens, kcol, dims.dim, 1.0f);
    __syncthreads();
    #pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float top = fmaxf(m[r], warp_all_max(s[r]));
      if (top == -INFINITY) continue;  // no visible key yet (the same for the whole warp)
      const float p = s[r] == -INFINITY ? 0.0f : expf(s[r] - top);
      const float alpha = expf(m[r] - top);  // 0 while m = -inf
      l[r] = l[r] * alpha + warp_all_sum(p);
      m[r] = top;
      #pragma unroll
      for (int c = 0; c < kC; ++c) o[r][c] *= alpha;
      for (int j = 0; j < kSpan; ++j) {
        const float w = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int c = 0; c < kC; ++c) o[r][c] = fmaf(w, vs[j * kD + lane + 32 * c], o[r][c]);
      }
    }
  }
  #pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t t = q0 + warp * kRows + r;
    if (t >= dims.tokens) continue;  // every valid row sees itself: l > 0
    #pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = lane + 32 * c;
      if (d < dims.dim) store_f32(out, dtype, t * ld_out + qcol + d, o[r][c] / l[r]);
    }
    if (lane == 0) lse[t * ld_lse + h] = m[r] + logf(l[r]);
  }
}

// delta = Σ_d dout·out of row t, head columns from col0, summed over the warp.
__device__ float row_delta(const void* out, int64_t ld_out, const void* dout, int64_t ld_dout, int dtype, int64_t t,
                           int64_t col0, int dim, int lane) {
  float acc = 0.0f;
  for (int d = lane; d < dim; d += 32)
    acc = fmaf(load_f32(out, dtype, t * ld_out + col0 + d), load_f32(dout, dtype, t * ld_dout + col0 + d), acc);
  return warp_all_sum(acc);
}

// dq: block (query tile of kWarps·kRows rows, head h); per key tile the probabilities p from lse,
// ds = p (dout·v − delta), then dq += ds·k, with the keys tile reloaded for the last step.
template <int kD, int kRows>
__global__ void __launch_bounds__(kThreads)
dq_kernel(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v, int64_t ld_v, const void* out,
          int64_t ld_out, const void* dout, int64_t ld_dout, const float* lse, int64_t ld_lse,
          const int32_t* seq_start, int dtype, Dims dims, void* dq, int64_t ld_dq, const unsigned long long* bad) {
  constexpr int kTile = kWarps * kRows, kC = kD / 32;
  __shared__ float qs[kTile][kD];
  __shared__ float dos[kTile][kD];
  __shared__ float kv[kD][kSpan + 1];
  if (*bad != 0) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int h = blockIdx.y, g = h / (dims.heads / dims.kv_heads);
  const int64_t q0 = blockIdx.x * (int64_t)kTile, q_end = min(q0 + kTile, dims.tokens);
  const int64_t qcol = int64_t{h} * dims.dim, kcol = int64_t{g} * dims.dim;
  load_rows<kD>(&qs[0][0], kD, kTile, q, dtype, ld_q, q0, dims.tokens, qcol, dims.dim, dims.scale);
  load_rows<kD>(&dos[0][0], kD, kTile, dout, dtype, ld_dout, q0, dims.tokens, qcol, dims.dim, 1.0f);
  float acc[kRows][kC], row_lse[kRows], delta[kRows];
  int64_t lo[kRows];
  #pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t t = q0 + warp * kRows + r;
    const bool live = t < dims.tokens;
    lo[r] = live ? doc_start(seq_start, t) : t;
    row_lse[r] = live ? lse[t * ld_lse + h] : 0.0f;
    delta[r] = live ? row_delta(out, ld_out, dout, ld_dout, dtype, t, qcol, dims.dim, lane) : 0.0f;
    #pragma unroll
    for (int c = 0; c < kC; ++c) acc[r][c] = 0.0f;
  }
  for (int64_t k0 = doc_start(seq_start, q0); k0 < q_end; k0 += kSpan) {
    const int64_t key = k0 + lane;
    float p[kRows], ds[kRows];
    __syncthreads();
    load_columns<kD>(kv, k, dtype, ld_k, k0, dims.tokens, kcol, dims.dim, 1.0f);
    __syncthreads();
    #pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int64_t t = q0 + warp * kRows + r;
      const float score = dot_column<kD>(qs[warp * kRows + r], kv, lane);
      p[r] = t < dims.tokens && key >= lo[r] && key <= t ? expf(score - row_lse[r]) : 0.0f;
    }
    __syncthreads();
    load_columns<kD>(kv, v, dtype, ld_v, k0, dims.tokens, kcol, dims.dim, 1.0f);
    __syncthreads();
    #pragma unroll
    for (int r = 0; r < kRows; ++r) ds[r] = p[r] * (dot_column<kD>(dos[warp * kRows + r], kv, lane) - delta[r]);
    __syncthreads();
    load_columns<kD>(kv, k, dtype, ld_k, k0, dims.tokens, kcol, dims.dim, 1.0f);
    __syncthreads();
    #pragma unroll
    for (int r = 0; r < kRows; ++r) add_weighted_columns<kD>(acc[r], ds[r], kv, lane);
  }
  #pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t t = q0 + warp * kRows + r;
    if (t >= dims.tokens) continue;
    #pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = lane + 32 * c;
      if (d < dims.dim) store_f32(dq, dtype, t * ld_dq + qcol + d, dims.scale * acc[r][c]);
    }
  }
}

// dk, dv: block (key tile of kWarps·kRows keys, kv head g); lane = query of a tile of 32. For each
// query head of g and each query tile that sees the keys: p and ds as in dq_kernel (transposed),
// dv += p·dout, dk += ds·(scale·q).
template <int kD, int kRows>
__global__ void __launch_bounds__(kThreads)
dkdv_kernel(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v, int64_t ld_v, const void* out,
            int64_t ld_out, const void* dout, int64_t ld_dout, const float* lse, int64_t ld_lse,
            const int32_t* seq_start, int dtype, Dims dims, void* dk, int64_t ld_dk, void* dv, int64_t ld_dv,
            const unsigned long long* bad) {
  constexpr int kTile = kWarps * kRows, kC = kD / 32;
  __shared__ float ks[kTile][kD];
  __shared__ float vs[kTile][kD];
  __shared__ float qd[kD][kSpan + 1];  // queries (scaled) transposed, then dout transposed
  if (*bad != 0) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = blockIdx.y, group = dims.heads / dims.kv_heads;
  const int64_t k0 = blockIdx.x * (int64_t)kTile, k_end = min(k0 + kTile, dims.tokens);
  const int64_t kcol = int64_t{g} * dims.dim;
  load_rows<kD>(&ks[0][0], kD, kTile, k, dtype, ld_k, k0, dims.tokens, kcol, dims.dim, 1.0f);
  load_rows<kD>(&vs[0][0], kD, kTile, v, dtype, ld_v, k0, dims.tokens, kcol, dims.dim, 1.0f);
  float dk_acc[kRows][kC], dv_acc[kRows][kC];
  #pragma unroll
  for (int r = 0; r < kRows; ++r)
    #pragma unroll
    for (int c = 0; c < kC; ++c) dk_acc[r][c] = dv_acc[r][c] = 0.0f;
  for (int h = g * group; h < (g + 1) * group; ++h) {
    const int64_t qcol = int64_t{h} * dims.dim;
    // queries from k0 on, until a tile whose first query's document starts after the last key
    for (int64_t q0 = k0; q0 < dims.tokens && doc_start(seq_start, q0) < k_end; q0 += kSpan) {
      const int64_t t = q0 + lane;
      const bool live = t < dims.tokens;
      const int64_t lo = live ? doc_start(seq_start, t) : t;
      const float row_lse = live ? lse[t * ld_lse + h] : 0.0f;
      float delta = 0.0f;  // this lane's query row alone: no warp sum
      if (live)
        for (int d = 0; d < dims.dim; ++d)
          delta = fmaf(load_f32(out, dtype, t * ld_out + qcol + d), load_f32(dout, dtype, t * ld_dout + qcol + d),
                       delta);
      float p[kRows], ds[kRows];
      __syncthreads();
      load_columns<kD>(qd, q, dtype, ld_q, q0, dims.tokens, qcol, dims.dim, dims.scale);
      __syncthreads();
      #pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int64_t key = k0 + warp * kRows + r;
        const float score = dot_column<kD>(ks[warp * kRows + r], qd, lane);
        p[r] = live && key < dims.tokens && key >= lo && key <= t ? expf(score - row_lse) : 0.0f;
      }
      __syncthreads();
      load_columns<kD>(qd, dout, dtype, ld_dout, q0, dims.tokens, qcol, dims.dim, 1.0f);
      __syncthreads();
      #pragma unroll
      for (int r = 0; r < kRows; ++r) {
        ds[r] = p[r] * (dot_column<kD>(vs[warp * kRows + r], qd, lane) - delta);
        add_weighted_columns<kD>(dv_acc[r], p[r], qd, lane);
      }
      __syncthreads();
      load_columns<kD>(qd, q, dtype, ld_q, q0, dims.tokens, qcol, dims.dim, dims.scale);
      __syncthreads();
      #pragma unroll
      for (int r = 0; r < kRows; ++r) add_weighted_columns<kD>(dk_acc[r], ds[r], qd, lane);
    }
  }
  #pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int64_t key = k0 + warp * kRows + r;
    if (key >= dims.tokens) continue;
    #pragma unroll
    for (int c = 0; c < kC; ++c) {
      const int d = lane + 32 * c;
      if (d >= dims.dim) continue;
      store_f32(dk, dtype, key * ld_dk + kcol + d, dk_acc[r][c]);
      store_f32(dv, dtype, key * ld_dv + kcol + d, dv_acc[r][c]);
    }
  }
}

// Rows per warp, so that each kernel's shared memory stays under 48 KiB for its kD.
template <int kD>
struct Rows {
  static constexpr int forward = kD == 256 ? 2 : 4;
  static constexpr int dq = kD == 256 ? 1 : 4;
  static constexpr int dkdv = kD == 256 ? 1 : (kD == 128 ? 4 : 8);
};

unsigned tiles(int64_t tokens, int rows_per_block) {
  return static_cast<unsigned>((tokens + rows_per_block - 1) / rows_per_block);
}

struct ForwardArgs {
  const void *q, *k, *v;
  int64_t ld_q, ld_k, ld_v;
  const int32_t* seq_start;
  int dtype;
  Dims dims;
  void* out;
  int64_t ld_out;
  float* lse;
  int64_t ld_lse;
};

template <int kD>
void launch_forward(const ForwardArgs& a, const unsigned long long* bad, cudaStream_t s) {
  constexpr int kRows = Rows<kD>::forward;
  const dim3 grid(tiles(a.dims.tokens, kWarps * kRows), static_cast<unsigned>(a.dims.heads));
  // launched through a pointer: the simulator's launch rewrite takes a plain name
  const auto attention_forward = forward_kernel<kD, kRows>;
  attention_forward<<<grid, kThreads, 0, s>>>(a.q, a.ld_q, a.k, a.ld_k, a.v, a.ld_v, a.seq_start, a.dtype,
                                                      a.dims, a.out, a.ld_out, a.lse, a.ld_lse, bad);
}

struct BackwardArgs {
  const void *q, *k, *v, *out, *dout;
  int64_t ld_q, ld_k, ld_v, ld_out, ld_dout;
  const float* lse;
  int64_t ld_lse;
  const int32_t* seq_start;
  int dtype;
  Dims dims;
  void *dq, *dk, *dv;
  int64_t ld_dq, ld_dk, ld_dv;
};

template <int kD>
int launch_backward(const BackwardArgs& a, const unsigned long long* bad, cudaStream_t s) {
  constexpr int kDqRows = Rows<kD>::dq, kDkdvRows = Rows<kD>::dkdv;
  const dim3 dq_grid(tiles(a.dims.tokens, kWarps * kDqRows), static_cast<unsigned>(a.dims.heads));
  const auto attention_dq = dq_kernel<kD, kDqRows>;
  attention_dq<<<dq_grid, kThreads, 0, s>>>(a.q, a.ld_q, a.k, a.ld_k, a.v, a.ld_v, a.out, a.ld_out, a.dout,
                                                      a.ld_dout, a.lse, a.ld_lse, a.seq_start, a.dtype, a.dims, a.dq,
                                                      a.ld_dq, bad);
  PLORA_TRY(launch_status("attention_backward (dq)"));
  const dim3 kv_grid(tiles(a.dims.tokens, kWarps * kDkdvRows), static_cast<unsigned>(a.dims.kv_heads));
  const auto attention_dkdv = dkdv_kernel<kD, kDkdvRows>;
  attention_dkdv<<<kv_grid, kThreads, 0, s>>>(a.q, a.ld_q, a.k, a.ld_k, a.v, a.ld_v, a.out, a.ld_out,
                                                          a.dout, a.ld_dout, a.lse, a.ld_lse, a.seq_start, a.dtype,
                                                          a.dims, a.dk, a.ld_dk, a.dv, a.ld_dv, bad);
  return launch_status("attention_backward (dk, dv)");
}

// Zeroes the scratch's count and launches the seq_start check into it.
int check_seq_start(const int32_t* seq_start, int64_t tokens, unsigned long long* count, cudaStream_t s,
                    const char* what) {
  cudaError_t e = cudaMemsetAsync(count, 0, sizeof *count, s);
  if (e != cudaSuccess) return cuda_fail(what, e);
  check_seq_start_kernel<<<std::min(grid_for(tokens, kThreads), 1024u), kThreads, 0, s>>>(seq_start, tokens, count);
  return launch_status(what);
}

// Waits for the stream and reports the count of bad seq_start rows.
int finish(const unsigned long long* count, int64_t tokens, int64_t* bad_seq_start, cudaStream_t s, const char* what) {
  unsigned long long host = 0;
  cudaError_t e = cudaMemcpyAsync(&host, count, sizeof host, cudaMemcpyDeviceToHost, s);
  if (e == cudaSuccess) e = cudaStreamSynchronize(s);
  if (e != cudaSuccess) return cuda_fail(what, e);
  *bad_seq_start = static_cast<int64_t>(host);
  if (host != 0)
    return fail(PLORA_ERR_INVALID, "%s: seq_start: %llu of %lld rows do not start or continue a document", what, host,
                (long long)tokens);
  return ok();
}

}  // namespace

extern "C" {

int plora_cuda_attention_forward(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v,
                                 int64_t ld_v, const int32_t* seq_start, int dtype, int64_t tokens, int heads,
                                 int kv_heads, int head_dim, float scale, void* out, int64_t ld_out, float* lse,
                                 int64_t ld_lse, int64_t* bad_seq_start, void* scratch, void* stream) {
  PLORA_TRY(check_attention_common("attention_forward", q, ld_q, k, ld_k, v, ld_v, seq_start, dtype, tokens, heads,
                                   kv_heads, head_dim, scale, lse, ld_lse, bad_seq_start));
  PLORA_TRY(check_matrix("out", out, ld_out, tokens, int64_t{heads} * head_dim));
  PLORA_TRY(check_scratch(scratch));
  *bad_seq_start = 0;
  if (tokens == 0) return ok();
  cudaStream_t s = as_stream(stream);
  auto* count = static_cast<unsigned long long*>(scratch);
  PLORA_TRY(check_seq_start(seq_start, tokens, count, s, "attention_forward (seq_start)"));
  const ForwardArgs a{q, k, v, ld_q, ld_k, ld_v, seq_start, dtype, {tokens, heads, kv_heads, head_dim, scale},
                      out, ld_out, lse, ld_lse};
  if (head_dim <= 64) launch_forward<64>(a, count, s);
  else if (head_dim <= 128) launch_forward<128>(a, count, s);
  else launch_forward<256>(a, count, s);
  PLORA_TRY(launch_status("attention_forward"));
  return finish(count, tokens, bad_seq_start, s, "attention_forward");
}

int plora_cuda_attention_backward(const void* q, int64_t ld_q, const void* k, int64_t ld_k, const void* v,
                                  int64_t ld_v, const void* out, int64_t ld_out, const void* dout, int64_t ld_dout,
                                  const float* lse, int64_t ld_lse, const int32_t* seq_start, int dtype,
                                  int64_t tokens, int heads, int kv_heads, int head_dim, float scale, void* dq,
                                  int64_t ld_dq, void* dk, int64_t ld_dk, void* dv, int64_t ld_dv,
                                  int64_t* bad_seq_start, void* scratch, void* stream) {
  PLORA_TRY(check_attention_common("attention_backward", q, ld_q, k, ld_k, v, ld_v, seq_start, dtype, tokens, heads,
                                   kv_heads, head_dim, scale, lse, ld_lse, bad_seq_start));
  const int64_t q_cols = int64_t{heads} * head_dim, kv_cols = int64_t{kv_heads} * head_dim;
  PLORA_TRY(check_matrix("out", out, ld_out, tokens, q_cols));
  PLORA_TRY(check_matrix("dout", dout, ld_dout, tokens, q_cols));
  PLORA_TRY(check_matrix("dq", dq, ld_dq, tokens, q_cols));
  PLORA_TRY(check_matrix("dk", dk, ld_dk, tokens, kv_cols));
  PLORA_TRY(check_matrix("dv", dv, ld_dv, tokens, kv_cols));
  PLORA_TRY(check_scratch(scratch));
  *bad_seq_start = 0;
  if (tokens == 0) return ok();
  cudaStream_t s = as_stream(stream);
  auto* count = static_cast<unsigned long long*>(scratch);
  PLORA_TRY(check_seq_start(seq_start, tokens, count, s, "attention_backward (seq_start)"));
  const BackwardArgs a{q, k, v, out, dout, ld_q, ld_k, ld_v, ld_out, ld_dout, lse, ld_lse, seq_start, dtype,
                       {tokens, heads, kv_heads, head_dim, scale}, dq, dk, dv, ld_dq, ld_dk, ld_dv};
  if (head_dim <= 64) PLORA_TRY(launch_backward<64>(a, count, s));
  else if (head_dim <= 128) PLORA_TRY(launch_backward<128>(a, count, s));
  else PLORA_TRY(launch_backward<256>(a, count, s));
  return finish(count, tokens, bad_seq_start, s, "attention_backward");
}

}  // extern "C"
