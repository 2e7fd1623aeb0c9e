// Kernel family lora on the GPU: the shrink (forward, out = scaling * (x * mask / (1-p)) * A^T)
// with its dropout mask, the dY pass (dS, dB) and the dA / dX update; dropout fused.
// CPU reference: native/cpu/lora.cpp (same Philox keys, same element indexing).
#include "../common/contracts.h"
#include "launch.cuh"
#include "plora/lora.h"
#include "plora/philox.h"

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRankTile = 16;  // output (rank) columns accumulated per pass
constexpr int kRowChunk = 64;  // rows per blockIdx.y chunk of the column kernels
static_assert(kRowChunk <= 64, "the dropout bits of a chunk live in one uint64_t");

// Blocks along y for a grid-stride loop over the row chunks of an m-row matrix.
unsigned row_chunk_blocks(int64_t m) {
  int64_t chunks = (m + kRowChunk - 1) / kRowChunk;
  return capped_grid(chunks, 65535);
}

__global__ void dropout_mask_kernel(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                    float keep_scale, uint32_t threshold, uint64_t seed,
                                    uint64_t stream_id) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n;
       e += (int64_t)gridDim.x * blockDim.x) {
    bool keep = dropout_keep(seed, stream_id, static_cast<uint64_t>(e), threshold);
    store_f32(out, dtype, (e / cols) * ld + e % cols, keep ? keep_scale : 0.0f);
  }
}

// One block per row of x: each thread accumulates a strided slice of the dot products for
// kRankTile outputs, then the block reduces them.
__global__ void __launch_bounds__(kThreads)
shrink_kernel(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out, int64_t ld_out,
              int dtype, int64_t m, int64_t k, int64_t r, float scaling, float keep_scale,
              uint32_t threshold, uint64_t seed, uint64_t stream_id) {
  __shared__ float partial[kWarps][kRankTile];
  for (int64_t row = blockIdx.x; row < m; row += gridDim.x) {
    for (int64_t j0 = 0; j0 < r; j0 += kRankTile) {
      const int tile = static_cast<int>(r - j0 < kRankTile ? r - j0 : kRankTile);
      float acc[kRankTile];
#pragma unroll
      for (int c = 0; c < kRankTile; ++c) acc[c] = 0.0f;
      for (int64_t t = threadIdx.x; t < k; t += kThreads) {
        float v = load_f32(x, dtype, row * ld_x + t);
        if (threshold != 0u)
          v *= dropout_keep(seed, stream_id, static_cast<uint64_t>(row * k + t), threshold) ? keep_scale : 0.0f;
#pragma unroll
        for (int c = 0; c < kRankTile; ++c)
          if (c < tile) acc[c] += v * load_f32(a, dtype, (j0 + c) * ld_a + t);
      }
      store_block_sums<kWarps, kRankTile>(acc, partial, tile, out, dtype, row * ld_out + j0, scaling);
    }
  }
}

// ds[i,j] = scaling * sum_t dy[i,t] * b[t,j]. One block per row of dy: each thread accumulates a
// strided slice of the dot products for kRankTile outputs, then the block reduces them (as in
// shrink_kernel). Writes zeros when n == 0.
__global__ void __launch_bounds__(kThreads)
ds_kernel(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, void* ds, int64_t ld_ds,
          int dtype, int64_t m, int64_t n, int64_t r, float scaling) {
  __shared__ float partial[kWarps][kRankTile];
  for (int64_t row = blockIdx.x; row < m; row += gridDim.x) {
    for (int64_t j0 = 0; j0 < r; j0 += kRankTile) {
      const int tile = static_cast<int>(r - j0 < kRankTile ? r - j0 : kRankTile);
      float acc[kRankTile];
#pragma unroll
      for (int c = 0; c < kRankTile; ++c) acc[c] = 0.0f;
      for (int64_t t = threadIdx.x; t < n; t += kThreads) {
        const float v = load_f32(dy, dtype, row * ld_dy + t);
#pragma unroll
        for (int c = 0; c < kRankTile; ++c)
          if (c < tile) acc[c] += v * load_f32(b, dtype, t * ld_b + j0 + c);
      }
      store_block_sums<kWarps, kRankTile>(acc, partial, tile, ds, dtype, row * ld_ds + j0, scaling);
    }
  }
}

// db[t,j] += sum_i dy[i,t] * ss[i,j]. Thread t owns column t of dy (coalesced loads; ss[i,j] is
// the same address for the whole warp); blockIdx.y walks chunks of kRowChunk rows, and each
// chunk's partial sums go to db with one atomicAdd per output.
__global__ void __launch_bounds__(kThreads)
db_kernel(const void* dy, int64_t ld_dy, const void* ss, int64_t ld_ss, float* db, int64_t ld_db,
          int dtype, int64_t m, int64_t n, int64_t r) {
  const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t >= n) return;
  const int64_t chunks = (m + kRowChunk - 1) / kRowChunk;
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int64_t i0 = chunk * kRowChunk;
    const int64_t i1 = m - i0 < kRowChunk ? m : i0 + kRowChunk;
    for (int64_t j0 = 0; j0 < r; j0 += kRankTile) {
      const int tile = static_cast<int>(r - j0 < kRankTile ? r - j0 : kRankTile);
      float acc[kRankTile];
#pragma unroll
      for (int c = 0; c < kRankTile; ++c) acc[c] = 0.0f;
      for (int64_t i = i0; i < i1; ++i) {
        const float v = load_f32(dy, dtype, i * ld_dy + t);
#pragma unroll
        for (int c = 0; c < kRankTile; ++c)
          if (c < tile) acc[c] += v * load_f32(ss, dtype, i * ld_ss + j0 + c);
      }
#pragma unroll
      for (int c = 0; c < kRankTile; ++c)
        if (c < tile) atomicAdd(db + t * ld_db + j0 + c, acc[c]);
    }
  }
}

// da[j,t] += sum_i ds[i,j] * xt[i,t] and, when dx != nullptr,
// dx[i,t] += factor[i,t] * sum_j ds[i,j] * a[j,t], with factor = keep ? 1/(1-p) : 0 and
// xt = x * factor. Thread t owns column t of x, blockIdx.y walks chunks of kRowChunk rows; the
// chunk's dropout decisions are drawn once into a bit mask, and its dA partial sums go to da with
// one atomicAdd per output. dx rows are owned by one thread each: a plain read-modify-write.
__global__ void __launch_bounds__(kThreads)
da_dx_kernel(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a,
             int64_t ld_a, float* da, int64_t ld_da, void* dx, int64_t ld_dx, int dtype, int64_t m,
             int64_t k, int64_t r, float keep_scale, uint32_t threshold, uint64_t seed,
             uint64_t stream_id) {
  const int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t >= k) return;
  const int64_t chunks = (m + kRowChunk - 1) / kRowChunk;
  for (int64_t chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int64_t i0 = chunk * kRowChunk;
    const int rows = static_cast<int>(m - i0 < kRowChunk ? m - i0 : kRowChunk);
    uint64_t kept = ~0ull;
    if (threshold != 0u) {
      kept = 0ull;
      for (int ii = 0; ii < rows; ++ii)
        if (dropout_keep(seed, stream_id, static_cast<uint64_t>((i0 + ii) * k + t), threshold))
          kept |= 1ull << ii;
    }

    for (int64_t j0 = 0; j0 < r; j0 += kRankTile) {
      const int tile = static_cast<int>(r - j0 < kRankTile ? r - j0 : kRankTile);
      float acc[kRankTile];
#pragma unroll
      for (int c = 0; c < kRankTile; ++c) acc[c] = 0.0f;
      for (int ii = 0; ii < rows; ++ii) {
        const int64_t i = i0 + ii;
        const float factor = (kept >> ii) & 1ull ? keep_scale : 0.0f;
        const float v = load_f32(x, dtype, i * ld_x + t) * factor;
#pragma unroll
        for (int c = 0; c < kRankTile; ++c)
          if (c < tile) acc[c] += load_f32(ds, dtype, i * ld_ds + j0 + c) * v;
      }
#pragma unroll
      for (int c = 0; c < kRankTile; ++c)
        if (c < tile) atomicAdd(da + (j0 + c) * ld_da + t, acc[c]);
    }

    if (dx == nullptr) continue;
    for (int ii = 0; ii < rows; ++ii) {
      const int64_t i = i0 + ii;
      float s = 0.0f;
      for (int64_t j = 0; j < r; ++j) s += load_f32(ds, dtype, i * ld_ds + j) * load_f32(a, dtype, j * ld_a + t);
      const float factor = (kept >> ii) & 1ull ? keep_scale : 0.0f;
      const int64_t e = i * ld_dx + t;
      store_f32(dx, dtype, e, load_f32(dx, dtype, e) + factor * s);
    }
  }
}

}  // namespace

extern "C" {


int plora_cuda_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols, float p,
                            uint64_t seed, uint64_t stream_id, void* stream) {
  PLORA_TRY(check_matrix_args("out", out, dtype, ld, rows, cols));
  PLORA_TRY(check_dropout(p));
  if (rows == 0 || cols == 0) return ok();
  dropout_mask_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, as_stream(stream)>>>(
      out, dtype, ld, rows, cols, 1.0f / (1.0f - p), dropout_threshold(p), seed, stream_id);
  return launch_status("dropout_mask");
}

int plora_cuda_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out,
                      int64_t ld_out, int dtype, int64_t m, int64_t k, int64_t r, float scaling,
                      float p, uint64_t seed, uint64_t stream_id, void* stream) {
  PLORA_TRY(check_shrink_args(x, ld_x, a, ld_a, out, ld_out, dtype, m, k, r, p));
  if (m == 0 || r == 0) return ok();
  const unsigned blocks = capped_grid(m, 65535 * 16);
  shrink_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(x, ld_x, a, ld_a, out, ld_out, dtype, m,
                                                            k, r, scaling, 1.0f / (1.0f - p),
                                                            dropout_threshold(p), seed, stream_id);
  return launch_status("shrink");
}


int plora_cuda_dy_pass(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, const void* ss,
                       int64_t ld_ss, void* ds, int64_t ld_ds, float* db, int64_t ld_db, int dtype,
                       int64_t m, int64_t n, int64_t r, float scaling, void* stream) {
  PLORA_TRY(check_dy_pass_args(dy, ld_dy, b, ld_b, ss, ld_ss, ds, ld_ds, db, ld_db, dtype, m, n, r));
  if (m == 0 || r == 0) return ok();
  const unsigned row_blocks = capped_grid(m, 65535 * 16);
  ds_kernel<<<row_blocks, kThreads, 0, as_stream(stream)>>>(dy, ld_dy, b, ld_b, ds, ld_ds, dtype, m,
                                                            n, r, scaling);
  PLORA_TRY(launch_status("dy_pass (ds)"));
  if (n == 0) return ok();
  const dim3 grid(static_cast<unsigned>((n + kThreads - 1) / kThreads), row_chunk_blocks(m));
  db_kernel<<<grid, kThreads, 0, as_stream(stream)>>>(dy, ld_dy, ss, ld_ss, db, ld_db, dtype, m, n, r);
  return launch_status("dy_pass (db)");
}

int plora_cuda_da_dx(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a,
                     int64_t ld_a, float* da, int64_t ld_da, void* dx, int64_t ld_dx, int dtype,
                     int64_t m, int64_t k, int64_t r, float p, uint64_t seed, uint64_t stream_id,
                     void* stream) {
  PLORA_TRY(check_da_dx_args(x, ld_x, ds, ld_ds, a, ld_a, da, ld_da, dx, ld_dx, dtype, m, k, r, p));
  if (m == 0 || k == 0 || r == 0) return ok();
  const dim3 grid(static_cast<unsigned>((k + kThreads - 1) / kThreads), row_chunk_blocks(m));
  da_dx_kernel<<<grid, kThreads, 0, as_stream(stream)>>>(
      x, ld_x, ds, ld_ds, a, ld_a, da, ld_da, dx, ld_dx, dtype, m, k, r, 1.0f / (1.0f - p),
      dropout_threshold(p), seed, stream_id);
  return launch_status("da_dx");
}

}  // extern "C"
