// Kernel family lora on the GPU: the shrink (forward, out = scaling * (x * mask / (1-p)) * A^T)
// with its dropout mask, the dY pass (dS, dB) and the dA / dX update; dropout fused.
// CPU reference: native/cpu/lora.cpp (same Philox keys, same element indexing).
//
// The three products are skinny GEMMs that stream one large operand (x or dY, [M, K or N]) past a
// small one (A or B, r x K): each kernel reads the large operand once, with 8- or 16-byte loads
// when its base and leading dimension allow (the scalar loads otherwise, chosen once per call),
// keeps the small one in shared memory or registers, and accumulates in fp32. Sums over rows
// that several blocks share (dS, dB, dA) go through per-block partials in stream-ordered scratch
// and a second kernel that adds them in a fixed order: the same bits on every run. In BF16 and
// F16 at r >= 16 on 16-byte rows all three run on tensor cores instead (shrink_mma_tiles,
// dy_pass_mma_tiles, da_dx_mma_tiles; mma.sync and movmatrix). Design and bandwidth:
// docs/kernels.md, "The LoRA kernels on the GPU".
#include "../common/contracts.h"
#include "launch.cuh"
#include "mma.cuh"
#include "plora/lora.h"
#include "plora/philox.h"
#include "runs.cuh"

#include <type_traits>

using namespace plora;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Shrink: a warp takes kShrinkRows rows at once (each staged value of A serves them all), the block
// kShrinkTile rows; A is staged in shared memory kShrinkChunk columns at a time.
constexpr int kShrinkRows = 4;
constexpr int kShrinkTile = kWarps * kShrinkRows;
constexpr int kShrinkChunk = 512;

// Shrink on tensor cores (BF16 or F16, r >= kMmaMinRank, 16-byte rows of x): a warp takes one
// 16-row tile of x, the block kMmaTile rows; A is staged in shared memory in its dtype, kMmaChunk columns at a
// time, each staged rank row kMmaPad vectors longer so that a warp's reads of two rows fall on
// different banks.
constexpr int kMmaMinRank = 16;
constexpr int kMmaWarps = 4;
constexpr int kMmaThreads = 32 * kMmaWarps;
constexpr int kMmaTile = 16 * kMmaWarps;
constexpr int kMmaChunk = 256;
constexpr int kMmaPad = 4;
// The largest rank tile of the tensor-core shrink and dA/dX: past it they loop over tiles.
constexpr int kMmaMaxRankTile = 64;

// dY pass and dA/dX on tensor cores (BF16 or F16, r >= kMmaMinRank, 16-byte rows of dy or x): a warp owns
// 64 / kR strips of 32 columns (so its sums of dB or dA are 64 floats per lane at every rank tile),
// the block kWarps warps side by side; the block walks its rows kMmaRows at a time. The rank tile
// is at most kDyMmaMaxRank in the dY pass (its cross-warp sums of dS share the 48 KiB of static
// shared memory with B's tile) and kMmaMaxRankTile in dA/dX.
constexpr int kMmaRows = 16;
constexpr int kDyMmaMaxRank = 32;
__host__ __device__ constexpr int mma_strips(int rank_tile) { return 64 / rank_tile; }
__host__ __device__ constexpr int mma_cols(int rank_tile) { return kWarps * 32 * mma_strips(rank_tile); }

// dY pass and dA/dX: a lane owns kLaneCols adjacent columns (with their r values of B or A and
// their r partial sums of dB or dA in registers), the block a tile of kTileCols columns, warps side
// by side; the block walks its rows kBatch at a time.
constexpr int kLaneCols = 4;
constexpr int kTileCols = kThreads * kLaneCols;
constexpr int kBatch = 8;
// Blocks of the column-owner kernels: about this many in all, each of at least kMinGroupRows rows
// where the rows allow (the per-block partials of dB and dA are what a row group costs).
constexpr int64_t kTargetBlocks = 256;
constexpr int64_t kMinGroupRows = 512;
// The largest rank tile of the CUDA-core kernels: past it they loop over tiles, x read per tile.
constexpr int kMaxRankTile = 16;

template <int kDtype>
struct Elem {
  static constexpr int kBytes = kDtype == PLORA_F32 ? 4 : 2;
};

__device__ __forceinline__ float half_bits_to_f32(int dtype, unsigned h) {
  return dtype == PLORA_BF16 ? bf16_to_f32(static_cast<uint16_t>(h)) : f16_to_f32(static_cast<uint16_t>(h));
}

// The kV floats of kW 32-bit words of storage (F32: one per word; BF16, F16: the low half first).
template <int kDtype, int kW, int kV>
__device__ __forceinline__ void unpack(const unsigned (&w)[kW], float (&v)[kV]) {
  static_assert(kV * Elem<kDtype>::kBytes == 4 * kW, "a vector is whole words");
#pragma unroll
  for (int i = 0; i < kW; ++i) {
    if (kDtype == PLORA_F32) {
      v[i] = __uint_as_float(w[i]);
    } else {
      v[(2 * i) % kV] = half_bits_to_f32(kDtype, w[i] & 0xffffu);
      v[(2 * i + 1) % kV] = half_bits_to_f32(kDtype, w[i] >> 16);
    }
  }
}

template <int kDtype, int kW, int kV>
__device__ __forceinline__ void pack(const float (&v)[kV], unsigned (&w)[kW]) {
#pragma unroll
  for (int i = 0; i < kW; ++i) {
    if (kDtype == PLORA_F32) {
      w[i] = __float_as_uint(v[i]);
    } else {
      const unsigned lo = kDtype == PLORA_BF16 ? f32_to_bf16(v[(2 * i) % kV]) : f32_to_f16(v[(2 * i) % kV]);
      const unsigned hi = kDtype == PLORA_BF16 ? f32_to_bf16(v[(2 * i + 1) % kV]) : f32_to_f16(v[(2 * i + 1) % kV]);
      w[i] = lo | hi << 16;
    }
  }
}

// Elements [e, e + kV) of `base` (element offsets) into v: one 8- or 16-byte load when kVector (the
// caller guarantees the alignment) and the run ends before `end`; otherwise one element at a time,
// zeros from `end` on.
template <int kDtype, bool kVector, int kV>
__device__ __forceinline__ void load_run(const void* base, int64_t e, int64_t end, float (&v)[kV]) {
  constexpr int kBytes = kV * Elem<kDtype>::kBytes;
  static_assert(kBytes == 8 || kBytes == 16, "a run is one 8- or 16-byte vector");
  if (kVector && e + kV <= end) {
    const char* p = static_cast<const char*>(base) + e * Elem<kDtype>::kBytes;
    if constexpr (kBytes == 16) {
      const uint4 q = *reinterpret_cast<const uint4*>(p);
      const unsigned w[4] = {q.x, q.y, q.z, q.w};
      unpack<kDtype>(w, v);
    } else {
      const uint2 q = *reinterpret_cast<const uint2*>(p);
      const unsigned w[2] = {q.x, q.y};
      unpack<kDtype>(w, v);
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < kV; ++i) v[i] = e + i < end ? load_f32(base, kDtype, e + i) : 0.0f;
}

// The store of load_run: elements [e, min(e + kV, end)) of `base`.
template <int kDtype, bool kVector, int kV>
__device__ __forceinline__ void store_run(void* base, int64_t e, int64_t end, const float (&v)[kV]) {
  constexpr int kBytes = kV * Elem<kDtype>::kBytes;
  if (kVector && e + kV <= end) {
    char* p = static_cast<char*>(base) + e * Elem<kDtype>::kBytes;
    if constexpr (kBytes == 16) {
      unsigned w[4];
      pack<kDtype>(v, w);
      *reinterpret_cast<uint4*>(p) = uint4{w[0], w[1], w[2], w[3]};
    } else {
      unsigned w[2];
      pack<kDtype>(v, w);
      *reinterpret_cast<uint2*>(p) = uint2{w[0], w[1]};
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < kV; ++i)
    if (e + i < end) store_f32(base, kDtype, e + i, v[i]);
}

// The dropout factors (keep_scale where kept, 0 where dropped) of elements [i, i + kV) of the mask,
// one Philox block per four elements (philox_run_words); all keep_scale when threshold is 0.
template <int kV>
__device__ __forceinline__ void dropout_factors(uint64_t seed, uint64_t stream_id, uint64_t i, uint32_t threshold,
                                                float keep_scale, float (&f)[kV]) {
  if (threshold == 0u) {
#pragma unroll
    for (int e = 0; e < kV; ++e) f[e] = keep_scale;
    return;
  }
  uint32_t words[kV];
  philox_run_words(seed, stream_id, i, words);
#pragma unroll
  for (int e = 0; e < kV; ++e) f[e] = words[e] >= threshold ? keep_scale : 0.0f;
}

// One halving exchange of warp_sum_scatter and the ones after it: the lanes whose bit kOffset is
// set keep values [kHalf, 2 kHalf) and send the lower ones to the partner kOffset lanes away, the
// others the reverse; each lane adds what it receives to what it keeps. kHalf and kOffset are
// template arguments so that every index into p is a constant (a loop whose bound is computed
// from the step is left rolled by the compiler, with p in local memory).
template <int kHalf, int kOffset, int kR>
__device__ __forceinline__ void scatter_halves(float (&p)[kR], int lane, int& rank) {
  const bool upper = (lane & kOffset) != 0;
#pragma unroll
  for (int i = 0; i < kHalf; ++i) {
    const float send = upper ? p[i] : p[i + kHalf];
    const float keep = upper ? p[i + kHalf] : p[i];
    p[i] = keep + __shfl_xor_sync(kFullMask, send, kOffset);
  }
  if (upper) rank += kHalf;
  if constexpr (kHalf > 1) scatter_halves<kHalf / 2, kOffset / 2>(p, lane, rank);
}

// The dropout mask of elements [i, i + kV) as bits, drawn as dropout_factors draws it: bit e set
// where element i + e is kept. Where a kernel's rank loop reads x once per rank tile, the first
// tile writes these bits to a per-call bitmap and the later tiles read them back instead of
// drawing again (each thread its own words: no barrier).
template <int kV>
__device__ __forceinline__ uint32_t kept_bits(uint64_t seed, uint64_t stream_id, uint64_t i, uint32_t threshold) {
  uint32_t words[kV];
  philox_run_words(seed, stream_id, i, words);
  uint32_t bits = 0u;
#pragma unroll
  for (int e = 0; e < kV; ++e) bits |= (words[e] >= threshold ? 1u : 0u) << e;
  return bits;
}

// The dropout factor of bit b of kept_bits: keep_scale where set, 0 where not.
__device__ __forceinline__ float kept_factor(uint32_t bits, int b, float keep_scale) {
  return (bits >> b & 1u) != 0u ? keep_scale : 0.0f;
}

// The dropout bits of the eight columns from `col` of rows `row` and `row + 8`: bit e and 8 + e
// set where kept (none past m), one Philox block per four elements as x_run_16 draws them.
__device__ __forceinline__ uint32_t kept_bits_2x8(uint64_t seed, uint64_t stream_id, int64_t row, int64_t col,
                                                  int64_t m, int64_t k, uint32_t threshold) {
  uint32_t bits = row < m ? kept_bits<8>(seed, stream_id, static_cast<uint64_t>(row * k + col), threshold) : 0u;
  if (row + 8 < m) bits |= kept_bits<8>(seed, stream_id, static_cast<uint64_t>((row + 8) * k + col), threshold) << 8;
  return bits;
}

// Adds a block's sum over one column tile to its partial of dS at `slot`: the block's first tile
// (tile == h) starts the partial, the later ones add to it.
__device__ __forceinline__ void add_to_partial(float* slot, int64_t tile, int64_t h, float sum) {
  *slot = tile == h ? sum : *slot + sum;
}

// The warp's sums of kR values per lane, scattered: each lane returns the warp-wide sum of one of
// them, value `rank` (halving exchanges: kR - 1 shuffles where one per value and offset would take
// 5 kR). Lanes l with l % (32 / kR) == 0 hold every rank once. Every lane of the warp must call it.
template <int kR>
__device__ __forceinline__ float warp_sum_scatter(float (&p)[kR], int lane, int& rank) {
  static_assert(kR >= 2 && kR <= 16 && (kR & (kR - 1)) == 0, "kR: a power of two up to 16");
  rank = 0;
  scatter_halves<kR / 2, 16>(p, lane, rank);
  float s = p[0];
#pragma unroll
  for (int offset = 8 / (kR / 2); offset > 0; offset /= 2) s += __shfl_xor_sync(kFullMask, s, offset);
  return s;
}

// The mask of a rows x cols activation, a run of eight elements per thread (runs.cuh).
__global__ void dropout_mask_kernel(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols, int64_t per_row,
                                    bool vector, float keep_scale, uint32_t threshold, uint64_t seed,
                                    uint64_t stream_id) {
  const int64_t runs = rows * per_row;
  for (int64_t run = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; run < runs;
       run += (int64_t)gridDim.x * blockDim.x) {
    const int64_t row = run / per_row, col = (run % per_row) * kRun;
    float f[kRun];
    dropout_factors(seed, stream_id, static_cast<uint64_t>(row * cols + col), threshold, keep_scale, f);
    store_run8(out, dtype, row * ld + col, row * ld + cols, vector, f);
  }
}

// The word of shrink_tiles' dropout bitmap: kShrinkRows rows of a kV-element run (16 or 32 bits).
template <int kDtype>
using ShrinkBitmapWord = std::conditional_t<(kShrinkRows * 16 / Elem<kDtype>::kBytes > 16), uint32_t, uint16_t>;
static_assert(sizeof(ShrinkBitmapWord<PLORA_F32>) == 2 && sizeof(ShrinkBitmapWord<PLORA_BF16>) == 4,
              "shrink_bitmap_bytes: kShrinkRows * kV / 8 bytes a word");

// out[i, j] = scaling * sum_t xt[i, t] * a[j, t] for kR ranks from j0 on, per tile of kShrinkTile
// rows (grid-stride). A's rank tile is staged as fp32, kShrinkChunk columns at a time; a warp
// runs over its kShrinkRows rows with kV-element vector loads, each lane kV columns apart from the
// next, and sums its lanes at the end of the tile.
// kBitmap (dropout with r past kR): the first rank tile keeps the mask of each warp step in
// `bitmap`, one word per lane (bit q * kV + e: element (row0 + q, col + e); kShrinkRows * kV bits,
// lanes on consecutive words), and the later tiles read the same thread's word back.
template <int kDtype, bool kVector, int kR, bool kBitmap>
__global__ void __launch_bounds__(kThreads)
shrink_tiles(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out, int64_t ld_out, int64_t m,
             int64_t k, int64_t r, float scaling, float keep_scale, uint32_t threshold, uint64_t seed,
             uint64_t stream_id, void* bitmap) {
  constexpr int kV = 16 / Elem<kDtype>::kBytes;
  static_assert(kShrinkChunk % (32 * kV) == 0, "a chunk is whole warp steps");
  using Word = ShrinkBitmapWord<kDtype>;
  __shared__ float staged[kR][kShrinkChunk];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t tiles = (m + kShrinkTile - 1) / kShrinkTile;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t row0 = tile * kShrinkTile + warp * kShrinkRows;
    for (int64_t j0 = 0; j0 < r; j0 += kR) {
      const int ranks = static_cast<int>(r - j0 < kR ? r - j0 : kR);
      float acc[kShrinkRows][kR];
#pragma unroll
      for (int q = 0; q < kShrinkRows; ++q)
#pragma unroll
        for (int j = 0; j < kR; ++j) acc[q][j] = 0.0f;
      for (int64_t c0 = 0; c0 < k; c0 += kShrinkChunk) {
        const int cols = static_cast<int>(k - c0 < kShrinkChunk ? k - c0 : kShrinkChunk);
        __syncthreads();  // the previous chunk's readers are done
        for (int e = threadIdx.x; e < kR * kShrinkChunk; e += kThreads) {
          const int j = e / kShrinkChunk, c = e % kShrinkChunk;
          staged[j][c] = j < ranks && c < cols ? load_f32(a, kDtype, (j0 + j) * ld_a + c0 + c) : 0.0f;
        }
        __syncthreads();
        for (int c = lane * kV; c < cols; c += 32 * kV) {
          float v[kShrinkRows][kV];
          Word* const word =  // the warp's group of kShrinkRows rows, then the step
              kBitmap ? static_cast<Word*>(bitmap) + (tile * kWarps + warp) * ((k + kV - 1) / kV) + (c0 + c) / kV
                      : nullptr;
          uint32_t bits = kBitmap && j0 > 0 && row0 < m ? *word : 0u;
#pragma unroll
          for (int q = 0; q < kShrinkRows; ++q) {
            const int64_t row = row0 + q;
            if (row < m) {
              load_run<kDtype, kVector>(x, row * ld_x + c0 + c, row * ld_x + c0 + cols, v[q]);
              float f[kV];
              if constexpr (kBitmap) {
                if (j0 == 0)
                  bits |= kept_bits<kV>(seed, stream_id, static_cast<uint64_t>(row * k + c0 + c), threshold) << (q * kV);
#pragma unroll
                for (int e = 0; e < kV; ++e) f[e] = kept_factor(bits, q * kV + e, keep_scale);
              } else {
                dropout_factors(seed, stream_id, static_cast<uint64_t>(row * k + c0 + c), threshold, keep_scale, f);
              }
#pragma unroll
              for (int e = 0; e < kV; ++e) v[q][e] *= f[e];
            } else {
#pragma unroll
              for (int e = 0; e < kV; ++e) v[q][e] = 0.0f;
            }
          }
          if (kBitmap && j0 == 0 && row0 < m) *word = static_cast<Word>(bits);
#pragma unroll
          for (int j = 0; j < kR; ++j) {
            float w[kV];
#pragma unroll
            for (int e = 0; e < kV; ++e) w[e] = staged[j][c + e];
#pragma unroll
            for (int q = 0; q < kShrinkRows; ++q)
#pragma unroll
              for (int e = 0; e < kV; ++e) acc[q][j] += v[q][e] * w[e];
          }
        }
      }
#pragma unroll
      for (int q = 0; q < kShrinkRows; ++q) {
        float p[kR];
#pragma unroll
        for (int j = 0; j < kR; ++j) p[j] = acc[q][j];
        int rank;
        const float s = warp_sum_scatter(p, lane, rank);
        const int64_t row = row0 + q;
        if (lane % (32 / kR) == 0 && row < m && rank < ranks) store_f32(out, kDtype, row * ld_out + j0 + rank, scaling * s);
      }
    }
  }
}

// Eight 16-bit elements of row `row` of x from column `col` (< k; zeros from k on and for rows past
// m) as four words, the dropped elements zeroed: the kept values stay exact and keep_scale is applied to
// the sum; none when threshold is 0. One 16-byte load when the run is whole (the caller guarantees
// the alignment).
__device__ __forceinline__ uint4 x_run_16(const void* x, int64_t ld_x, int64_t row, int64_t col, int64_t m,
                                          int64_t k, uint32_t threshold, uint64_t seed, uint64_t stream_id) {
  if (row >= m) return uint4{0u, 0u, 0u, 0u};
  const uint16_t* p = static_cast<const uint16_t*>(x) + row * ld_x + col;
  unsigned w[4];
  if (col + 8 <= k) {
    const uint4 q = *reinterpret_cast<const uint4*>(p);
    w[0] = q.x, w[1] = q.y, w[2] = q.z, w[3] = q.w;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const unsigned lo = col + 2 * i < k ? p[2 * i] : 0u, hi = col + 2 * i + 1 < k ? p[2 * i + 1] : 0u;
      w[i] = lo | hi << 16;
    }
  }
  if (threshold != 0u) {
    uint32_t words[8];
    philox_run_words(seed, stream_id, static_cast<uint64_t>(row * k + col), words);
#pragma unroll
    for (int i = 0; i < 4; ++i)
      w[i] &= (words[2 * i] >= threshold ? 0x0000ffffu : 0u) | (words[2 * i + 1] >= threshold ? 0xffff0000u : 0u);
  }
  return uint4{w[0], w[1], w[2], w[3]};
}

// Eight 16-bit elements (four words) with the elements whose bit of kept_bits is clear zeroed.
__device__ __forceinline__ uint4 kept_only_16(uint4 q, uint32_t bits) {
  unsigned w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
  for (int i = 0; i < 4; ++i)
    w[i] &= ((bits >> (2 * i) & 1u) != 0u ? 0x0000ffffu : 0u) | ((bits >> (2 * i + 1) & 1u) != 0u ? 0xffff0000u : 0u);
  return uint4{w[0], w[1], w[2], w[3]};
}

// The shrink of shrink_tiles on tensor cores, BF16 or F16 (kDtype): out[i, j] = scaling * keep_scale *
// sum_t kept(x)[i, t] * a[j, t] for kR ranks from j0 on (kR / 8 tiles of 8), per tile of kMmaTile
// rows (grid-stride), accumulated in fp32 by mma.sync m16n8k16 (cuda/mma.cuh). The sum over t is
// taken in any order, so each 32-column step feeds two mmas a permutation of its columns that lets
// every lane load 16 contiguous bytes: lane (g, c) of the ISA's layout (g = lane / 4, c = lane % 4)
// reads columns [8c, 8c + 8) of the step from rows g and g + 8 of x (A fragments: words 0, 1 to
// the first mma, 2, 3 to the second) and from rank g of each staged tile of A (B fragments, the
// same words), so that both operands see column 8c + e at the same k slot.
// kBitmap (dropout with r past kR): the first rank tile keeps the mask of each step in `bitmap`,
// one 16-bit word per lane (bits e and 8 + e: columns col + e of rows g and g + 8; a warp's 32
// words consecutive), and the later tiles read the same lane's word back.
template <int kDtype, int kR, bool kBitmap>
__global__ void __launch_bounds__(kMmaThreads)
shrink_mma_tiles(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out, int64_t ld_out, int64_t m,
                 int64_t k, int64_t r, float scaling, float keep_scale, uint32_t threshold, uint64_t seed,
                 uint64_t stream_id, void* bitmap) {
  constexpr int kN = kR / 8, kVectors = kMmaChunk / 8;
  static_assert(kR % 8 == 0 && kMmaChunk % 32 == 0, "whole n8 tiles and k32 steps");
  __shared__ uint4 staged[kR][kVectors + kMmaPad];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const uint16_t* ab = static_cast<const uint16_t*>(a);
  const int64_t tiles = (m + kMmaTile - 1) / kMmaTile;
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const int64_t row_lo = tile * kMmaTile + warp * 16 + g, row_hi = row_lo + 8;
    for (int64_t j0 = 0; j0 < r; j0 += kR) {
      float acc[kN][4];
#pragma unroll
      for (int n = 0; n < kN; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[n][i] = 0.0f;
      for (int64_t c0 = 0; c0 < k; c0 += kMmaChunk) {
        const int cols = static_cast<int>(k - c0 < kMmaChunk ? k - c0 : kMmaChunk);
        __syncthreads();  // the previous chunk's readers are done
        for (int e = threadIdx.x; e < kR * kVectors; e += kMmaThreads) {
          const int j = e / kVectors, v = e % kVectors;
          unsigned w[4];
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const int col = 8 * v + 2 * i;
            const bool rank = j0 + j < r;
            const unsigned lo = rank && col < cols ? ab[(j0 + j) * ld_a + c0 + col] : 0u;
            const unsigned hi = rank && col + 1 < cols ? ab[(j0 + j) * ld_a + c0 + col + 1] : 0u;
            w[i] = lo | hi << 16;
          }
          staged[j][v] = uint4{w[0], w[1], w[2], w[3]};
        }
        __syncthreads();
        for (int step = 0; step < cols; step += 32) {
          const int64_t col = c0 + step + 8 * c;
          uint4 lo, hi;
          if constexpr (kBitmap) {
            const int64_t warp_tile = tile * kMmaWarps + warp;
            const bool live = warp_tile * 16 < m;  // a warp tile wholly past m has no words
            uint16_t* const word =
                static_cast<uint16_t*>(bitmap) + (warp_tile * ((k + 31) / 32) + (c0 + step) / 32) * 32 + lane;
            uint32_t bits = 0u;
            if (j0 == 0) {
              bits = kept_bits_2x8(seed, stream_id, row_lo, col, m, k, threshold);
              if (live) *word = static_cast<uint16_t>(bits);
            } else if (live) {
              bits = *word;
            }
            lo = kept_only_16(x_run_16(x, ld_x, row_lo, col, m, k, 0u, seed, stream_id), bits);
            hi = kept_only_16(x_run_16(x, ld_x, row_hi, col, m, k, 0u, seed, stream_id), bits >> 8);
          } else {
            lo = x_run_16(x, ld_x, row_lo, col, m, k, threshold, seed, stream_id);
            hi = x_run_16(x, ld_x, row_hi, col, m, k, threshold, seed, stream_id);
          }
          const uint32_t first[4] = {lo.x, hi.x, lo.y, hi.y}, second[4] = {lo.z, hi.z, lo.w, hi.w};
#pragma unroll
          for (int n = 0; n < kN; ++n) {
            const uint4 b = staged[8 * n + g][step / 8 + c];
            const uint32_t b_first[2] = {b.x, b.y}, b_second[2] = {b.z, b.w};
            mma_m16n8k16<kDtype == PLORA_F16>(acc[n], first, b_first, acc[n]);
            mma_m16n8k16<kDtype == PLORA_F16>(acc[n], second, b_second, acc[n]);
          }
        }
      }
#pragma unroll
      for (int n = 0; n < kN; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int64_t row = i < 2 ? row_lo : row_hi, j = j0 + 8 * n + 2 * c + (i & 1);
          if (row < m && j < r) store_f32(out, kDtype, row * ld_out + j, scaling * keep_scale * acc[n][i]);
        }
    }
  }
}

// The dY pass over dy [m, n], one read: for kR ranks from j0 on, per block (g, h) of a (G, H) grid,
//   ds_part[h][i][j] = sum over the block's columns t of dy[i, t] * b[t, j]   (rows of row group g)
//   db_part[g][t][j] = sum over the rows i of row group g of dy[i, t] * ss[i, j]   (its columns)
// Row group g is the batches of kBatch rows g, g + G, ...; the block's columns are its column
// tiles h, h + H, .... A lane holds b and the dB sums of its kLaneCols columns in registers; each
// row's dS sum goes over the lanes (warp_sum_scatter) and then over the warps in order.
template <int kDtype, bool kVector, int kR>
__global__ void __launch_bounds__(kThreads)
dy_pass_tiles(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, const void* ss, int64_t ld_ss,
              float* ds_part, float* db_part, int64_t m, int64_t n, int64_t r) {
  __shared__ float ss_rows[kBatch][kR];
  __shared__ float warp_sums[kWarps][kBatch][kR];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t batches = (m + kBatch - 1) / kBatch, tiles = (n + kTileCols - 1) / kTileCols;
  const int64_t g = blockIdx.x, h = blockIdx.y;
  for (int64_t j0 = 0; j0 < r; j0 += kR) {
    const int ranks = static_cast<int>(r - j0 < kR ? r - j0 : kR);
    for (int64_t tile = h; tile < tiles; tile += gridDim.y) {
      const int64_t col = tile * kTileCols + threadIdx.x * kLaneCols;
      float bl[kLaneCols][kR], db_acc[kLaneCols][kR];
#pragma unroll
      for (int e = 0; e < kLaneCols; ++e)
#pragma unroll
        for (int j = 0; j < kR; ++j) {
          bl[e][j] = col + e < n && j < ranks ? load_f32(b, kDtype, (col + e) * ld_b + j0 + j) : 0.0f;
          db_acc[e][j] = 0.0f;
        }
      for (int64_t batch = g; batch < batches; batch += gridDim.x) {
        const int64_t row0 = batch * kBatch;
        __syncthreads();  // the previous batch's readers of ss_rows and warp_sums are done
        if (threadIdx.x < kBatch * kR) {
          const int q = threadIdx.x / kR, j = threadIdx.x % kR;
          const int64_t row = row0 + q;
          ss_rows[q][j] = row < m && j < ranks ? load_f32(ss, kDtype, row * ld_ss + j0 + j) : 0.0f;
        }
        __syncthreads();
        float v[kBatch][kLaneCols];
#pragma unroll
        for (int q = 0; q < kBatch; ++q) {
          const int64_t row = row0 + q;
          if (row < m) {
            load_run<kDtype, kVector>(dy, row * ld_dy + col, row * ld_dy + n, v[q]);
          } else {
#pragma unroll
            for (int e = 0; e < kLaneCols; ++e) v[q][e] = 0.0f;
          }
        }
#pragma unroll
        for (int q = 0; q < kBatch; ++q) {
          float p[kR];
#pragma unroll
          for (int j = 0; j < kR; ++j) {
            const float s = ss_rows[q][j];
            float d = 0.0f;
#pragma unroll
            for (int e = 0; e < kLaneCols; ++e) {
              d += v[q][e] * bl[e][j];
              db_acc[e][j] += v[q][e] * s;
            }
            p[j] = d;
          }
          int rank;
          const float s = warp_sum_scatter(p, lane, rank);
          if (lane % (32 / kR) == 0) warp_sums[warp][q][rank] = s;
        }
        __syncthreads();
        if (threadIdx.x < kBatch * kR) {
          const int q = threadIdx.x / kR, j = threadIdx.x % kR;
          const int64_t row = row0 + q;
          if (row < m && j < ranks) {
            float s = 0.0f;
            for (int w = 0; w < kWarps; ++w) s += warp_sums[w][q][j];
            add_to_partial(ds_part + (h * m + row) * r + j0 + j, tile, h, s);
          }
        }
      }
#pragma unroll
      for (int e = 0; e < kLaneCols; ++e)
        if (col + e < n)
#pragma unroll
          for (int j = 0; j < kR; ++j)
            if (j < ranks) db_part[(g * n + col + e) * r + j0 + j] = db_acc[e][j];
    }
  }
}

// Ranks j and j + 1 of row `row` of a [rows, r] 16-bit matrix as one word (rank j in the low half),
// zeros past its rows and ranks; one 4-byte load when `words` (base and ld even in elements) and
// both ranks exist.
__device__ __forceinline__ uint32_t rank_pair(const uint16_t* base, int64_t ld, int64_t row, int64_t j, int64_t rows,
                                              int64_t r, bool words) {
  if (row >= rows || j >= r) return 0u;
  const uint16_t* p = base + row * ld + j;
  if (j + 1 >= r) return p[0];
  return words ? *reinterpret_cast<const uint32_t*>(p) : (p[0] | static_cast<uint32_t>(p[1]) << 16);
}

// Ranks [j0, j0 + ranks) of rows [row0, row0 + kMmaRows) of a [m, r] 16-bit matrix into shared
// memory as pairs along the rows: word (j, w) holds rows 2w and 2w + 1 of rank j0 + j (zeros past m
// and the ranks). Every thread of the block takes part; the caller puts the barriers around it.
template <int kR>
__device__ __forceinline__ void stage_by_rank(uint32_t (&tile)[kR][kMmaRows / 2], const uint16_t* src, int64_t ld,
                                              int64_t row0, int64_t m, int64_t j0, int ranks) {
  for (int e = threadIdx.x; e < kR * (kMmaRows / 2); e += blockDim.x) {
    const int j = e / (kMmaRows / 2), w = e % (kMmaRows / 2);
    const int64_t row = row0 + 2 * w;
    const bool rank = j < ranks;
    const unsigned lo = rank && row < m ? src[row * ld + j0 + j] : 0u;
    const unsigned hi = rank && row + 1 < m ? src[(row + 1) * ld + j0 + j] : 0u;
    tile[j][w] = lo | hi << 16;
  }
}

// The running sums over rows of a product whose output is ranks x columns (dB = dYᵀ·(s·S),
// dA = dSᵀ·kept(x)) for one warp's kStrips strips of 32 columns, on tensor cores. A batch of 16
// rows comes as the lane's words of rows g and g + 8 (columns [8c, 8c + 8) of each strip, as
// loaded for the row-wise product); movmatrix turns each word into a pair of rows of one column,
// the B fragment (k = rows, n = columns) of n8 tile i, whose slot g is column 8 (g / 2) + 2i + g % 2,
// so that D holds columns 8c + 2i, + 1: lane (g, c) sums ranks 16u + g (+ 8) of those columns.
template <int kDtype, int kStrips, int kU>
struct ColumnSums {
  float acc[kStrips][kU][4][4];

  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int s = 0; s < kStrips; ++s)
#pragma unroll
      for (int u = 0; u < kU; ++u)
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) acc[s][u][i][e] = 0.0f;
  }

  // Adds strip s's batch against the A fragments of the batch's rows by rank (rank_fragments).
  __device__ __forceinline__ void add(int s, uint4 lo, uint4 hi, const uint32_t (&ranks_by_rows)[kU][4]) {
    const uint32_t lo_w[4] = {lo.x, lo.y, lo.z, lo.w}, hi_w[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const uint32_t bt[2] = {movmatrix_m8n8_trans_b16(lo_w[i]), movmatrix_m8n8_trans_b16(hi_w[i])};
#pragma unroll
      for (int u = 0; u < kU; ++u) mma_m16n8k16<kDtype == PLORA_F16>(acc[s][u][i], ranks_by_rows[u], bt, acc[s][u][i]);
    }
  }

  // scale times the sums into out[col * col_stride + j * rank_stride] for the warp's columns from
  // col0 (below `cols`) and ranks below `ranks`, both counted from out.
  __device__ __forceinline__ void store(float* out, int64_t col_stride, int64_t rank_stride, int64_t col0,
                                        int64_t cols, int ranks, float scale) const {
    const int lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
#pragma unroll
    for (int s = 0; s < kStrips; ++s)
#pragma unroll
      for (int u = 0; u < kU; ++u)
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int j = 16 * u + g + (e >= 2 ? 8 : 0);
            const int64_t col = col0 + 32 * s + 8 * c + 2 * i + (e & 1);
            if (col < cols && j < ranks) out[col * col_stride + j * rank_stride] = scale * acc[s][u][i][e];
          }
  }
};

// The A fragments of ranks 16u .. 16u + 15 x the batch's rows from a stage_by_rank tile.
template <int kR>
__device__ __forceinline__ void rank_fragments(const uint32_t (&tile)[kR][kMmaRows / 2], uint32_t (&frag)[kR / 16][4]) {
  const int lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
#pragma unroll
  for (int u = 0; u < kR / 16; ++u) {
    frag[u][0] = tile[16 * u + g][c];
    frag[u][1] = tile[16 * u + g + 8][c];
    frag[u][2] = tile[16 * u + g][c + 4];
    frag[u][3] = tile[16 * u + g + 8][c + 4];
  }
}

// The dY pass of dy_pass_tiles on tensor cores, BF16 or F16 with 16-byte rows of dy: the same partials for
// kR ranks from j0 on (kR = 16 or 32), the block (g, h) owning column tiles of mma_cols(kR)
// columns, each warp mma_strips(kR) strips of 32 of them, and walking the rows of row group g
// kMmaRows at a time (batches g, g + G, ...). Per batch a lane loads one uint4 of rows g and g + 8
// of each strip (the shrink's permuted columns: lane (g, c) holds columns [8c, 8c + 8)), and
//   dS: those words are the A fragments of dy against B's rank tile, staged in shared memory
//       (B fragments; transposed on the way by movmatrix, so that both its loads and its stores
//       are whole words); summed over the warp's strips in registers, then over the warps in a fixed
//       order (the upper half's sums into shared memory, the lower half's added, the halves summed);
//   dB: movmatrix turns each word into a pair of rows of one column, a B fragment of dy (k = rows,
//       n = columns), against the batch's 16 rows of s·S staged as pairs along the rows
//       (A fragments, ranks x rows); the sums stay in registers until the tile is done.
template <int kDtype, int kR>
__global__ void __launch_bounds__(kThreads)
dy_pass_mma_tiles(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, const void* ss, int64_t ld_ss,
                  float* ds_part, float* db_part, int64_t m, int64_t n, int64_t r) {
  constexpr int kStrips = mma_strips(kR), kCols = mma_cols(kR), kVectors = kCols / 8;
  constexpr int kN = kR / 8, kU = kR / 16, kHalf = kWarps / 2;
  static_assert(kR % 16 == 0 && kStrips >= 1, "whole m16 tiles of ranks");
  __shared__ uint4 staged_b[kR][kVectors + kMmaPad];  // rank j: columns 8v .. 8v + 7 of the tile
  __shared__ uint32_t staged_ss[kR][kMmaRows / 2];   // stage_by_rank: rank j, rows 2w and 2w + 1
  __shared__ float half_ds[kHalf][kMmaRows][kR + 8];
  const uint16_t* bb = static_cast<const uint16_t*>(b);
  const uint16_t* sb = static_cast<const uint16_t*>(ss);
  const bool b_words = reinterpret_cast<uintptr_t>(b) % 4 == 0 && ld_b % 2 == 0;  // rank pairs as one load
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const int64_t batches = (m + kMmaRows - 1) / kMmaRows, tiles = (n + kCols - 1) / kCols;
  const int64_t group = blockIdx.x, h = blockIdx.y;
  for (int64_t j0 = 0; j0 < r; j0 += kR) {
    const int ranks = static_cast<int>(r - j0 < kR ? r - j0 : kR);
    for (int64_t tile = h; tile < tiles; tile += gridDim.y) {
      const int64_t col0 = tile * kCols;
      __syncthreads();  // the previous tile's readers of staged_b are done
      // B [n, r] holds the ranks of a column side by side; staged_b wants the columns of a rank. A
      // warp step takes ranks 8q .. 8q + 7 of a strip of 32 columns: lane (g, c) reads ranks
      // 2c, 2c + 1 of column 8 (g / 2) + 2i + g % 2 for i = 0 .. 3 (a word each), and movmatrix
      // hands it rank g of columns 2i + 8c, + 1 of the strip: the uint4 of columns [8c, 8c + 8)
      for (int step = warp; step < (kR / 8) * (kCols / 32); step += kWarps) {
        const int q = step / (kCols / 32), strip = step % (kCols / 32);
        unsigned w[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int64_t col = col0 + strip * 32 + 8 * (g / 2) + 2 * i + g % 2;
          w[i] = movmatrix_m8n8_trans_b16(rank_pair(bb, ld_b, col, j0 + 8 * q + 2 * c, n, r, b_words));
        }
        staged_b[8 * q + g][strip * 4 + c] = uint4{w[0], w[1], w[2], w[3]};
      }
      ColumnSums<kDtype, kStrips, kU> db;
      db.zero();
      for (int64_t batch = group; batch < batches; batch += gridDim.x) {
        const int64_t row0 = batch * kMmaRows;
        uint4 lo[kStrips], hi[kStrips];  // issued before the barriers, in flight while they wait
#pragma unroll
        for (int s = 0; s < kStrips; ++s) {
          const int64_t col = col0 + (warp * kStrips + s) * 32 + 8 * c;
          lo[s] = x_run_16(dy, ld_dy, row0 + g, col, m, n, 0u, 0, 0);
          hi[s] = x_run_16(dy, ld_dy, row0 + g + 8, col, m, n, 0u, 0, 0);
        }
        __syncthreads();  // staged_b is written; the previous batch's readers of staged_ss, half_ds are done
        stage_by_rank(staged_ss, sb, ld_ss, row0, m, j0, ranks);
        __syncthreads();
        float ds_acc[kN][4];
#pragma unroll
        for (int t = 0; t < kN; ++t)
#pragma unroll
          for (int e = 0; e < 4; ++e) ds_acc[t][e] = 0.0f;
        uint32_t sa[kU][4];
        rank_fragments(staged_ss, sa);
#pragma unroll
        for (int s = 0; s < kStrips; ++s) {
          const uint32_t first[4] = {lo[s].x, hi[s].x, lo[s].y, hi[s].y};
          const uint32_t second[4] = {lo[s].z, hi[s].z, lo[s].w, hi[s].w};
#pragma unroll
          for (int t = 0; t < kN; ++t) {
            const uint4 bv = staged_b[8 * t + g][(warp * kStrips + s) * 4 + c];
            const uint32_t b_first[2] = {bv.x, bv.y}, b_second[2] = {bv.z, bv.w};
            mma_m16n8k16<kDtype == PLORA_F16>(ds_acc[t], first, b_first, ds_acc[t]);
            mma_m16n8k16<kDtype == PLORA_F16>(ds_acc[t], second, b_second, ds_acc[t]);
          }
          db.add(s, lo[s], hi[s], sa);
        }
        // the warps' dS sums, in a fixed order: the upper half's stored, the lower half's added; a
        // lane's pairs of ranks go as one float2 (rows kR + 8 floats apart: no bank conflicts)
        if (warp >= kHalf)
#pragma unroll
          for (int t = 0; t < kN; ++t)
#pragma unroll
            for (int h = 0; h < 2; ++h)
              *reinterpret_cast<float2*>(&half_ds[warp - kHalf][g + 8 * h][8 * t + 2 * c]) =
                  float2{ds_acc[t][2 * h], ds_acc[t][2 * h + 1]};
        __syncthreads();
        if (warp < kHalf)
#pragma unroll
          for (int t = 0; t < kN; ++t)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              float2* const pair = reinterpret_cast<float2*>(&half_ds[warp][g + 8 * h][8 * t + 2 * c]);
              const float2 upper = *pair;
              *pair = float2{upper.x + ds_acc[t][2 * h], upper.y + ds_acc[t][2 * h + 1]};
            }
        __syncthreads();
        for (int e = threadIdx.x; e < kMmaRows * kR; e += kThreads) {
          const int q = e / kR, j = e % kR;
          const int64_t row = row0 + q;
          if (row < m && j < ranks) {
            float sum = 0.0f;
            for (int w = 0; w < kHalf; ++w) sum += half_ds[w][q][j];
            add_to_partial(ds_part + (h * m + row) * r + j0 + j, tile, h, sum);
          }
        }
      }
      db.store(db_part + group * n * r + j0, r, 1, col0 + warp * kStrips * 32, n, ranks, 1.0f);
    }
  }
}

// The dA / dX update over x [m, k], one read: for kR ranks from j0 on, per block (g, h),
//   da_part[g][j][t] = sum over the rows i of row group g of ds[i, j] * xt[i, t]   (its columns)
//   dx[i, t] += factor[i, t] * sum_j ds[i, j] * a[j, t]   (when dx != nullptr; one thread per element)
// with factor the dropout factor and xt = x * factor; rows and columns as in dy_pass_tiles.
// kBitmap (dropout with r past kR): the first rank tile keeps the mask of each batch in `bitmap`,
// one word per lane (bit q * kLaneCols + e: element (row0 + q, col + e); lanes on consecutive
// words), and the later tiles read the same thread's word back.
template <int kDtype, bool kVector, int kR, bool kBitmap>
__global__ void __launch_bounds__(kThreads)
da_dx_tiles(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a, int64_t ld_a,
            float* da_part, void* dx, int64_t ld_dx, int64_t m, int64_t k, int64_t r, float keep_scale,
            uint32_t threshold, uint64_t seed, uint64_t stream_id, void* bitmap) {
  static_assert(kBatch * kLaneCols == 32, "a batch's mask is one word per lane");
  __shared__ float ds_rows[kBatch][kR];
  const int64_t batches = (m + kBatch - 1) / kBatch, tiles = (k + kTileCols - 1) / kTileCols;
  const int64_t g = blockIdx.x, h = blockIdx.y;
  const bool with_dx = dx != nullptr;
  for (int64_t j0 = 0; j0 < r; j0 += kR) {
    const int ranks = static_cast<int>(r - j0 < kR ? r - j0 : kR);
    for (int64_t tile = h; tile < tiles; tile += gridDim.y) {
      const int64_t col = tile * kTileCols + threadIdx.x * kLaneCols;
      float al[kLaneCols][kR], da_acc[kLaneCols][kR];
#pragma unroll
      for (int e = 0; e < kLaneCols; ++e)
#pragma unroll
        for (int j = 0; j < kR; ++j) {
          al[e][j] = with_dx && col + e < k && j < ranks ? load_f32(a, kDtype, (j0 + j) * ld_a + col + e) : 0.0f;
          da_acc[e][j] = 0.0f;
        }
      for (int64_t batch = g; batch < batches; batch += gridDim.x) {
        const int64_t row0 = batch * kBatch;
        __syncthreads();  // the previous batch's readers of ds_rows are done
        if (threadIdx.x < kBatch * kR) {
          const int q = threadIdx.x / kR, j = threadIdx.x % kR;
          const int64_t row = row0 + q;
          ds_rows[q][j] = row < m && j < ranks ? load_f32(ds, kDtype, row * ld_ds + j0 + j) : 0.0f;
        }
        __syncthreads();
        if (col >= k) continue;  // no barrier until the next batch: lanes past k may idle
        float v[kBatch][kLaneCols], f[kBatch][kLaneCols];
        uint32_t* const word =
            kBitmap ? static_cast<uint32_t*>(bitmap) + batch * ((k + kLaneCols - 1) / kLaneCols) + col / kLaneCols
                    : nullptr;
        uint32_t bits = kBitmap && j0 > 0 ? *word : 0u;
#pragma unroll
        for (int q = 0; q < kBatch; ++q) {
          const int64_t row = row0 + q;
          if (row < m) {
            load_run<kDtype, kVector>(x, row * ld_x + col, row * ld_x + k, v[q]);
            if constexpr (kBitmap) {
              if (j0 == 0)
                bits |= kept_bits<kLaneCols>(seed, stream_id, static_cast<uint64_t>(row * k + col), threshold)
                        << (q * kLaneCols);
#pragma unroll
              for (int e = 0; e < kLaneCols; ++e) f[q][e] = kept_factor(bits, q * kLaneCols + e, keep_scale);
            } else {
              dropout_factors(seed, stream_id, static_cast<uint64_t>(row * k + col), threshold, keep_scale, f[q]);
            }
          } else {
#pragma unroll
            for (int e = 0; e < kLaneCols; ++e) v[q][e] = f[q][e] = 0.0f;
          }
        }
        if (kBitmap && j0 == 0) *word = bits;
        // dx rows one ahead: the next row's load is issued before this row's store
        float d_next[kLaneCols] = {};
        if (with_dx && row0 < m) load_run<kDtype, kVector>(dx, row0 * ld_dx + col, row0 * ld_dx + k, d_next);
#pragma unroll
        for (int q = 0; q < kBatch; ++q) {
          float d[kLaneCols];
#pragma unroll
          for (int e = 0; e < kLaneCols; ++e) d[e] = d_next[e];
          const int64_t next = row0 + q + 1;
          if (with_dx && q + 1 < kBatch && next < m)
            load_run<kDtype, kVector>(dx, next * ld_dx + col, next * ld_dx + k, d_next);
#pragma unroll
          for (int e = 0; e < kLaneCols; ++e) {
            const float xt = v[q][e] * f[q][e];
#pragma unroll
            for (int j = 0; j < kR; ++j) da_acc[e][j] += ds_rows[q][j] * xt;
          }
          const int64_t row = row0 + q;
          if (!with_dx || row >= m) continue;
#pragma unroll
          for (int e = 0; e < kLaneCols; ++e) {
            float s = 0.0f;
#pragma unroll
            for (int j = 0; j < kR; ++j) s += ds_rows[q][j] * al[e][j];
            d[e] += f[q][e] * s;
          }
          store_run<kDtype, kVector>(dx, row * ld_dx + col, row * ld_dx + k, d);
        }
      }
#pragma unroll
      for (int j = 0; j < kR; ++j)
        if (j < ranks)
#pragma unroll
          for (int e = 0; e < kLaneCols; ++e)
            if (col + e < k) da_part[(g * r + j0 + j) * k + col + e] = da_acc[e][j];
    }
  }
}

// The dA / dX update of da_dx_tiles on tensor cores, BF16 or F16 with 16-byte rows of x (and of dx): the
// same partials of dA for kR ranks from j0 on (kR = 16, 32 or 64), the block (g, h) owning column
// tiles of mma_cols(kR) columns, each warp mma_strips(kR) strips of 32, walking the rows of row
// group g kMmaRows at a time. Per batch a lane loads one uint4 of rows g and g + 8 of each strip
// (columns [8c, 8c + 8) for lane (g, c)) with its dropout bits, and
//   dA: the kept words, transposed by movmatrix (as the dY pass does dy), are B fragments (k = rows,
//       n = columns) against the batch's rows of dS staged as pairs along the rows (A
//       fragments, ranks x rows); the sums stay in registers until the tile is done;
//   dX: dS's rows staged as pairs along the ranks (A fragments, rows x ranks) against A's tile staged
//       as pairs along the ranks (B fragments), n8 tile i's slot 2c + e mapped to column 8c + 2i + e,
//       so that D lands in the lane's own columns of rows g and g + 8: dx is read, updated where
//       kept and written as the lane's two uint4.
// kBitmap (dropout with r past kR): the first rank tile keeps each lane's 16 bits of a batch and
// strip in `bitmap` (the shrink_mma_tiles layout: a warp's 32 words consecutive), and the later
// tiles read the same lane's word back.
template <int kDtype, int kR, bool kBitmap>
__global__ void __launch_bounds__(kThreads)
da_dx_mma_tiles(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a, int64_t ld_a,
                float* da_part, void* dx, int64_t ld_dx, int64_t m, int64_t k, int64_t r, float keep_scale,
                uint32_t threshold, uint64_t seed, uint64_t stream_id, void* bitmap) {
  constexpr int kStrips = mma_strips(kR), kCols = mma_cols(kR), kPairs = kR / 2, kU = kR / 16;
  static_assert(kR % 16 == 0 && kStrips >= 1, "whole k16 / m16 tiles of ranks");
  // A's rank tile: word (p, col) holds ranks 2p and 2p + 1 of the column; rows 2 words longer than
  // the tile so that the four pairs a warp reads at once fall on different banks
  __shared__ uint32_t staged_a[kPairs][kCols + 2];
  __shared__ uint32_t ds_by_rows[kR][kMmaRows / 2];   // stage_by_rank: rank j, rows 2w and 2w + 1
  __shared__ uint32_t ds_by_ranks[kMmaRows][kPairs];  // row q: ranks 2p and 2p + 1
  const uint16_t* ab = static_cast<const uint16_t*>(a);
  const uint16_t* dsb = static_cast<const uint16_t*>(ds);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, c = lane % 4;
  const int64_t batches = (m + kMmaRows - 1) / kMmaRows, tiles = (k + kCols - 1) / kCols;
  const int64_t group = blockIdx.x, h = blockIdx.y;
  const bool with_dx = dx != nullptr;
  for (int64_t j0 = 0; j0 < r; j0 += kR) {
    const int ranks = static_cast<int>(r - j0 < kR ? r - j0 : kR);
    for (int64_t tile = h; tile < tiles; tile += gridDim.y) {
      const int64_t col0 = tile * kCols;
      __syncthreads();  // the previous tile's readers of staged_a are done
      if (with_dx)
        for (int e = threadIdx.x; e < kPairs * kCols; e += kThreads) {
          const int p = e / kCols, col = e % kCols;
          const bool inside = col0 + col < k;
          const unsigned lo = inside && 2 * p < ranks ? ab[(j0 + 2 * p) * ld_a + col0 + col] : 0u;
          const unsigned hi = inside && 2 * p + 1 < ranks ? ab[(j0 + 2 * p + 1) * ld_a + col0 + col] : 0u;
          staged_a[p][col] = lo | hi << 16;
        }
      ColumnSums<kDtype, kStrips, kU> da;
      da.zero();
      for (int64_t batch = group; batch < batches; batch += gridDim.x) {
        const int64_t row0 = batch * kMmaRows, row_lo = row0 + g, row_hi = row0 + g + 8;
        uint4 lo[kStrips], hi[kStrips];  // issued before the barriers, in flight while they wait
        uint32_t keep_lo[kStrips], keep_hi[kStrips];
#pragma unroll
        for (int s = 0; s < kStrips; ++s) {
          const int64_t strip_col = col0 + (warp * kStrips + s) * 32, col = strip_col + 8 * c;
          uint32_t bits = 0xffffu;  // bits e and 8 + e: columns col + e of rows g and g + 8
          if (threshold != 0u) {
            uint16_t* const word =
                kBitmap ? static_cast<uint16_t*>(bitmap) + (batch * ((k + 31) / 32) + strip_col / 32) * 32 + lane
                        : nullptr;
            if (kBitmap && j0 > 0) {
              bits = strip_col < k ? *word : 0u;
            } else {
              bits = kept_bits_2x8(seed, stream_id, row_lo, col, m, k, threshold);
              if (kBitmap && strip_col < k) *word = static_cast<uint16_t>(bits);
            }
          }
          keep_lo[s] = bits & 0xffu;
          keep_hi[s] = bits >> 8;
          lo[s] = kept_only_16(x_run_16(x, ld_x, row_lo, col, m, k, 0u, 0, 0), keep_lo[s]);
          hi[s] = kept_only_16(x_run_16(x, ld_x, row_hi, col, m, k, 0u, 0, 0), keep_hi[s]);
        }
        __syncthreads();  // staged_a is written; the previous batch's readers of the dS tiles are done
        stage_by_rank(ds_by_rows, dsb, ld_ds, row0, m, j0, ranks);
        if (with_dx)
          for (int e = threadIdx.x; e < kMmaRows * kPairs; e += kThreads) {
            const int q = e / kPairs, p = e % kPairs;
            const int64_t row = row0 + q;
            const bool inside = row < m;
            const unsigned lo_s = inside && 2 * p < ranks ? dsb[row * ld_ds + j0 + 2 * p] : 0u;
            const unsigned hi_s = inside && 2 * p + 1 < ranks ? dsb[row * ld_ds + j0 + 2 * p + 1] : 0u;
            ds_by_ranks[q][p] = lo_s | hi_s << 16;
          }
        __syncthreads();
        uint32_t dst[kU][4];  // dS transposed: A fragments of ranks 16u .. 16u + 15 x the batch's rows
        rank_fragments(ds_by_rows, dst);
#pragma unroll
        for (int s = 0; s < kStrips; ++s) {
          da.add(s, lo[s], hi[s], dst);
          if (!with_dx) continue;
          const int strip_col = (warp * kStrips + s) * 32;
          float acc[4][4];
#pragma unroll
          for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][e] = 0.0f;
#pragma unroll
          for (int u = 0; u < kU; ++u) {
            const uint32_t dsr[4] = {ds_by_ranks[g][8 * u + c], ds_by_ranks[g + 8][8 * u + c],
                                     ds_by_ranks[g][8 * u + c + 4], ds_by_ranks[g + 8][8 * u + c + 4]};
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              const int col = strip_col + 8 * (g / 2) + 2 * i + g % 2;  // n8 tile i's slot g
              const uint32_t b_frag[2] = {staged_a[8 * u + c][col], staged_a[8 * u + c + 4][col]};
              mma_m16n8k16<kDtype == PLORA_F16>(acc[i], dsr, b_frag, acc[i]);
            }
          }
          const int64_t col = col0 + strip_col + 8 * c;
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int64_t row = half == 0 ? row_lo : row_hi;
            if (row >= m) continue;
            const unsigned keep = half == 0 ? keep_lo[s] : keep_hi[s];
            float d[8];
            load_run<kDtype, true>(dx, row * ld_dx + col, row * ld_dx + k, d);
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
              for (int e = 0; e < 2; ++e)
                if ((keep >> (2 * i + e)) & 1u) d[2 * i + e] += keep_scale * acc[i][2 * half + e];
            store_run<kDtype, true>(dx, row * ld_dx + col, row * ld_dx + k, d);
          }
        }
      }
      da.store(da_part + (group * r + j0) * k, 1, k, col0 + warp * kStrips * 32, k, ranks, keep_scale);
    }
  }
}

// out[i, j] = scaling * sum_p part[p][i][j] (+ out[i, j] when accumulate), the parts added in
// order p = 0, 1, ...: the deterministic second step of the dY pass and the dA update.
__global__ void sum_partials_kernel(const float* part, int64_t parts, int64_t rows, int64_t cols, void* out,
                                    int dtype, int64_t ld_out, float scaling, bool accumulate) {
  const int64_t n = rows * cols;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    float s = 0.0f;
    for (int64_t p = 0; p < parts; ++p) s += part[p * n + e];
    const int64_t o = (e / cols) * ld_out + e % cols;
    store_f32(out, dtype, o, (accumulate ? load_f32(out, dtype, o) : 0.0f) + scaling * s);
  }
}

// ---- launches ----

// Whether rows of `base` (leading dimension ld) can be read in kBytes vectors: base and row
// stride both multiples of kBytes.
bool vector_rows(const void* base, int64_t ld, int dtype, int bytes) {
  return reinterpret_cast<uintptr_t>(base) % bytes == 0 && (ld * dtype_size(dtype)) % bytes == 0;
}

// Whether a dtype has tensor-core kernels (16-bit elements: bf16 and IEEE half).
bool tensor_core_dtype(int dtype) { return dtype == PLORA_BF16 || dtype == PLORA_F16; }

// The rank tile of a call: the smallest of 4, 8, 16 that holds r (16 and a loop over tiles beyond).
int rank_tile(int64_t r) { return r <= 4 ? 4 : r <= 8 ? 8 : kMaxRankTile; }

// The bytes of a call's dropout bitmap (one bit per element of x, in the kernels' words), for the
// kernels that read x once per rank tile: where there is dropout and r is past the largest tile.
int64_t shrink_bitmap_bytes(int64_t m, int64_t k, int dtype) {
  const int64_t kv = 16 / dtype_size(dtype), word = kShrinkRows * kv / 8;
  return (m + kShrinkRows - 1) / kShrinkRows * ((k + kv - 1) / kv) * word;
}
int64_t mma_bitmap_bytes(int64_t m, int64_t k) { return (m + 15) / 16 * ((k + 31) / 32) * 32 * 2; }
int64_t da_dx_bitmap_bytes(int64_t m, int64_t k) {
  return (m + kBatch - 1) / kBatch * ((k + kLaneCols - 1) / kLaneCols) * 4;
}

// The (row groups, column groups) grid of the column-owner kernels over m rows, `cols` columns, in
// column tiles of tile_cols and row batches of batch_rows.
dim3 column_owner_grid(int64_t m, int64_t cols, int64_t tile_cols = kTileCols, int64_t batch_rows = kBatch) {
  const int64_t tiles = (cols + tile_cols - 1) / tile_cols, batches = (m + batch_rows - 1) / batch_rows;
  const unsigned h = capped_grid(tiles, 65535);
  const int64_t groups = std::max<int64_t>(1, std::min(kTargetBlocks / h, (m + kMinGroupRows - 1) / kMinGroupRows));
  return dim3(capped_grid(batches, groups), h);
}

int sum_partials(const float* part, int64_t parts, int64_t rows, int64_t cols, void* out, int dtype, int64_t ld_out,
                 float scaling, bool accumulate, cudaStream_t stream, const char* what) {
  if (rows == 0 || cols == 0) return ok();
  sum_partials_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, stream>>>(part, parts, rows, cols, out, dtype,
                                                                                 ld_out, scaling, accumulate);
  return launch_status(what);
}

// A bitmap (non-null only past the largest rank tile) runs the kernel that draws the mask once.
template <int kDtype, bool kVector, int kR>
void launch_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out, int64_t ld_out, int64_t m,
                   int64_t k, int64_t r, float scaling, float keep_scale, uint32_t threshold, uint64_t seed,
                   uint64_t stream_id, void* bitmap, cudaStream_t stream) {
  const unsigned blocks = capped_grid((m + kShrinkTile - 1) / kShrinkTile, 65535);
  if constexpr (kR == kMaxRankTile) {
    if (bitmap != nullptr) {
      const auto shrink_bitmap_kernel = shrink_tiles<kDtype, kVector, kR, true>;
      shrink_bitmap_kernel<<<blocks, kThreads, 0, stream>>>(x, ld_x, a, ld_a, out, ld_out, m, k, r, scaling,
                                                            keep_scale, threshold, seed, stream_id, bitmap);
      return;
    }
  }
  const auto shrink_kernel = shrink_tiles<kDtype, kVector, kR, false>;
  shrink_kernel<<<blocks, kThreads, 0, stream>>>(x, ld_x, a, ld_a, out, ld_out, m, k, r, scaling, keep_scale,
                                                 threshold, seed, stream_id, nullptr);
}

// The tensor-core shrink with the rank tile that holds r (16, 32, or 64 and a loop over tiles; a
// bitmap, non-null only past 64, runs the kernel that draws the mask once).
template <int kDtype>
void launch_shrink_mma(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out, int64_t ld_out, int64_t m,
                       int64_t k, int64_t r, float scaling, float keep_scale, uint32_t threshold, uint64_t seed,
                       uint64_t stream_id, void* bitmap, cudaStream_t stream) {
  const unsigned blocks = capped_grid((m + kMmaTile - 1) / kMmaTile, 65535);
  if (bitmap != nullptr) {
    const auto shrink_mma_bitmap_kernel = shrink_mma_tiles<kDtype, kMmaMaxRankTile, true>;
    shrink_mma_bitmap_kernel<<<blocks, kMmaThreads, 0, stream>>>(x, ld_x, a, ld_a, out, ld_out, m, k, r, scaling,
                                                                 keep_scale, threshold, seed, stream_id, bitmap);
    return;
  }
  const auto shrink_mma_kernel = r <= 16   ? shrink_mma_tiles<kDtype, 16, false>
                                 : r <= 32 ? shrink_mma_tiles<kDtype, 32, false>
                                           : shrink_mma_tiles<kDtype, kMmaMaxRankTile, false>;
  shrink_mma_kernel<<<blocks, kMmaThreads, 0, stream>>>(x, ld_x, a, ld_a, out, ld_out, m, k, r, scaling, keep_scale,
                                                        threshold, seed, stream_id, nullptr);
}

template <int kDtype, bool kVector, int kR>
void launch_dy_pass(dim3 grid, const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, const void* ss,
                    int64_t ld_ss, float* ds_part, float* db_part, int64_t m, int64_t n, int64_t r,
                    cudaStream_t stream) {
  const auto dy_pass_kernel = dy_pass_tiles<kDtype, kVector, kR>;
  dy_pass_kernel<<<grid, kThreads, 0, stream>>>(dy, ld_dy, b, ld_b, ss, ld_ss, ds_part, db_part, m, n, r);
}

// The tensor-core dY pass with the rank tile that holds r (16, or 32 and a loop over tiles).
template <int kDtype>
void launch_dy_pass_mma(dim3 grid, const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, const void* ss,
                        int64_t ld_ss, float* ds_part, float* db_part, int64_t m, int64_t n, int64_t r,
                        cudaStream_t stream) {
  const auto dy_pass_mma_kernel = r <= 16 ? dy_pass_mma_tiles<kDtype, 16> : dy_pass_mma_tiles<kDtype, kDyMmaMaxRank>;
  dy_pass_mma_kernel<<<grid, kThreads, 0, stream>>>(dy, ld_dy, b, ld_b, ss, ld_ss, ds_part, db_part, m, n, r);
}

// A bitmap (non-null only past the largest rank tile) runs the kernel that draws the mask once.
template <int kDtype, bool kVector, int kR>
void launch_da_dx(dim3 grid, const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a, int64_t ld_a,
                  float* da_part, void* dx, int64_t ld_dx, int64_t m, int64_t k, int64_t r, float keep_scale,
                  uint32_t threshold, uint64_t seed, uint64_t stream_id, void* bitmap, cudaStream_t stream) {
  if constexpr (kR == kMaxRankTile) {
    if (bitmap != nullptr) {
      const auto da_dx_bitmap_kernel = da_dx_tiles<kDtype, kVector, kR, true>;
      da_dx_bitmap_kernel<<<grid, kThreads, 0, stream>>>(x, ld_x, ds, ld_ds, a, ld_a, da_part, dx, ld_dx, m, k, r,
                                                          keep_scale, threshold, seed, stream_id, bitmap);
      return;
    }
  }
  const auto da_dx_kernel = da_dx_tiles<kDtype, kVector, kR, false>;
  da_dx_kernel<<<grid, kThreads, 0, stream>>>(x, ld_x, ds, ld_ds, a, ld_a, da_part, dx, ld_dx, m, k, r, keep_scale,
                                               threshold, seed, stream_id, nullptr);
}

// The tensor-core dA / dX update with the rank tile that holds r (16, 32, or 64 and a loop over
// tiles); a bitmap (non-null only past 64 ranks) runs the kernel that draws the mask once.
template <int kDtype>
void launch_da_dx_mma(dim3 grid, const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a,
                      int64_t ld_a, float* da_part, void* dx, int64_t ld_dx, int64_t m, int64_t k, int64_t r,
                      float keep_scale, uint32_t threshold, uint64_t seed, uint64_t stream_id, void* bitmap,
                      cudaStream_t stream) {
  if (bitmap != nullptr) {
    const auto da_dx_mma_bitmap_kernel = da_dx_mma_tiles<kDtype, kMmaMaxRankTile, true>;
    da_dx_mma_bitmap_kernel<<<grid, kThreads, 0, stream>>>(x, ld_x, ds, ld_ds, a, ld_a, da_part, dx, ld_dx, m, k, r,
                                                           keep_scale, threshold, seed, stream_id, bitmap);
    return;
  }
  const auto da_dx_mma_kernel = r <= 16   ? da_dx_mma_tiles<kDtype, 16, false>
                                : r <= 32 ? da_dx_mma_tiles<kDtype, 32, false>
                                          : da_dx_mma_tiles<kDtype, kMmaMaxRankTile, false>;
  da_dx_mma_kernel<<<grid, kThreads, 0, stream>>>(x, ld_x, ds, ld_ds, a, ld_a, da_part, dx, ld_dx, m, k, r, keep_scale,
                                                   threshold, seed, stream_id, nullptr);
}

// The rank tile of the tensor-core dA / dX update.
int da_mma_rank_tile(int64_t r) { return r <= 16 ? 16 : r <= 32 ? 32 : kMmaMaxRankTile; }

// Calls launch<kDtype>(args...) of a tensor-core path for the runtime dtype, BF16 or F16.
#define PLORA_MMA_DISPATCH(launch, dtype, ...)                       \
  do {                                                               \
    if (dtype == PLORA_F16) launch<PLORA_F16>(__VA_ARGS__);          \
    else launch<PLORA_BF16>(__VA_ARGS__);                            \
  } while (0)

// Calls launch<kDtype, kVector, kR>(args...) for the runtime dtype, vector choice and rank tile.
#define PLORA_LORA_DISPATCH(launch, dtype, vector, r, ...)                      \
  do {                                                                         \
    const int tile_ = rank_tile(r);                                            \
    if (dtype == PLORA_F32) {                                                  \
      PLORA_LORA_DISPATCH_RANK(launch, PLORA_F32, vector, tile_, __VA_ARGS__); \
    } else if (dtype == PLORA_BF16) {                                          \
      PLORA_LORA_DISPATCH_RANK(launch, PLORA_BF16, vector, tile_, __VA_ARGS__); \
    } else {                                                                   \
      PLORA_LORA_DISPATCH_RANK(launch, PLORA_F16, vector, tile_, __VA_ARGS__); \
    }                                                                          \
  } while (0)
#define PLORA_LORA_DISPATCH_RANK(launch, dt, vector, tile, ...) \
  do {                                                          \
    if (vector) {                                               \
      if (tile == 4) launch<dt, true, 4>(__VA_ARGS__);          \
      else if (tile == 8) launch<dt, true, 8>(__VA_ARGS__);     \
      else launch<dt, true, 16>(__VA_ARGS__);                   \
    } else {                                                    \
      if (tile == 4) launch<dt, false, 4>(__VA_ARGS__);         \
      else if (tile == 8) launch<dt, false, 8>(__VA_ARGS__);    \
      else launch<dt, false, 16>(__VA_ARGS__);                  \
    }                                                           \
  } while (0)

}  // namespace

extern "C" {

int plora_cuda_dropout_mask(void* out, int dtype, int64_t ld, int64_t rows, int64_t cols, float p,
                            uint64_t seed, uint64_t stream_id, void* stream) {
  PLORA_TRY(check_matrix_args("out", out, dtype, ld, rows, cols));
  PLORA_TRY(check_dropout(p));
  if (rows == 0 || cols == 0) return ok();
  const RunGrid runs(rows, cols);
  dropout_mask_kernel<<<grid_for(runs.count, kThreads), kThreads, 0, as_stream(stream)>>>(
      out, dtype, ld, rows, cols, runs.per_row, aligned_rows(out, ld, dtype), 1.0f / (1.0f - p),
      dropout_threshold(p), seed, stream_id);
  return launch_status("dropout_mask");
}

int plora_cuda_shrink(const void* x, int64_t ld_x, const void* a, int64_t ld_a, void* out,
                      int64_t ld_out, int dtype, int64_t m, int64_t k, int64_t r, float scaling,
                      float p, uint64_t seed, uint64_t stream_id, void* stream) {
  PLORA_TRY(check_shrink_args(x, ld_x, a, ld_a, out, ld_out, dtype, m, k, r, p));
  if (m == 0 || r == 0) return ok();
  const cudaStream_t s = as_stream(stream);
  const uint32_t threshold = dropout_threshold(p);
  const bool vector = vector_rows(x, ld_x, dtype, 16);
  const bool tensor_cores = tensor_core_dtype(dtype) && r >= kMmaMinRank && vector;
  StreamScratch<unsigned char> bitmap(s);  // the mask drawn once where x is read per rank tile
  if (threshold != 0u && r > (tensor_cores ? kMmaMaxRankTile : kMaxRankTile))
    PLORA_TRY(bitmap.allocate(tensor_cores ? mma_bitmap_bytes(m, k) : shrink_bitmap_bytes(m, k, dtype),
                              "shrink (dropout bitmap)"));
  if (tensor_cores) {
    PLORA_MMA_DISPATCH(launch_shrink_mma, dtype, x, ld_x, a, ld_a, out, ld_out, m, k, r, scaling, 1.0f / (1.0f - p),
                       threshold, seed, stream_id, bitmap.ptr, s);
    return launch_status("shrink");
  }
  PLORA_LORA_DISPATCH(launch_shrink, dtype, vector, r, x, ld_x, a, ld_a, out, ld_out, m, k, r, scaling,
                      1.0f / (1.0f - p), threshold, seed, stream_id, bitmap.ptr, s);
  return launch_status("shrink");
}

int plora_cuda_dy_pass(const void* dy, int64_t ld_dy, const void* b, int64_t ld_b, const void* ss,
                       int64_t ld_ss, void* ds, int64_t ld_ds, float* db, int64_t ld_db, int dtype,
                       int64_t m, int64_t n, int64_t r, float scaling, void* stream) {
  PLORA_TRY(check_dy_pass_args(dy, ld_dy, b, ld_b, ss, ld_ss, ds, ld_ds, db, ld_db, dtype, m, n, r));
  if (m == 0 || r == 0) return ok();
  const cudaStream_t s = as_stream(stream);
  const bool tensor_cores = tensor_core_dtype(dtype) && r >= kMmaMinRank && vector_rows(dy, ld_dy, dtype, 16);
  const dim3 grid = tensor_cores ? column_owner_grid(m, n, mma_cols(r <= 16 ? 16 : kDyMmaMaxRank), kMmaRows)
                                 : column_owner_grid(m, n);
  const int64_t ds_floats = n > 0 ? int64_t(grid.y) * m * r : 0, db_floats = int64_t(grid.x) * n * r;
  StreamScratch<float> part(s);
  PLORA_TRY(part.allocate(ds_floats + db_floats, "dy_pass (scratch)"));
  if (n > 0 && tensor_cores) {
    PLORA_MMA_DISPATCH(launch_dy_pass_mma, dtype, grid, dy, ld_dy, b, ld_b, ss, ld_ss, part.ptr, part.ptr + ds_floats, m,
                       n, r, s);
    PLORA_TRY(launch_status("dy_pass"));
  } else if (n > 0) {
    const bool vector = vector_rows(dy, ld_dy, dtype, kLaneCols * static_cast<int>(dtype_size(dtype)));
    PLORA_LORA_DISPATCH(launch_dy_pass, dtype, vector, r, grid, dy, ld_dy, b, ld_b, ss, ld_ss, part.ptr,
                        part.ptr + ds_floats, m, n, r, s);
    PLORA_TRY(launch_status("dy_pass"));
  }
  PLORA_TRY(sum_partials(part.ptr, n > 0 ? grid.y : 0, m, r, ds, dtype, ld_ds, scaling, false, s, "dy_pass (ds)"));
  return sum_partials(part.ptr + ds_floats, grid.x, n, r, db, PLORA_F32, ld_db, 1.0f, true, s, "dy_pass (db)");
}

int plora_cuda_da_dx(const void* x, int64_t ld_x, const void* ds, int64_t ld_ds, const void* a,
                     int64_t ld_a, float* da, int64_t ld_da, void* dx, int64_t ld_dx, int dtype,
                     int64_t m, int64_t k, int64_t r, float p, uint64_t seed, uint64_t stream_id,
                     void* stream) {
  PLORA_TRY(check_da_dx_args(x, ld_x, ds, ld_ds, a, ld_a, da, ld_da, dx, ld_dx, dtype, m, k, r, p));
  if (m == 0 || k == 0 || r == 0) return ok();
  const cudaStream_t s = as_stream(stream);
  const bool tensor_cores = tensor_core_dtype(dtype) && r >= kMmaMinRank && vector_rows(x, ld_x, dtype, 16) &&
                            (dx == nullptr || vector_rows(dx, ld_dx, dtype, 16));
  const dim3 grid = tensor_cores ? column_owner_grid(m, k, mma_cols(da_mma_rank_tile(r)), kMmaRows)
                                 : column_owner_grid(m, k);
  StreamScratch<float> part(s);
  PLORA_TRY(part.allocate(int64_t(grid.x) * r * k, "da_dx (scratch)"));
  const uint32_t threshold = dropout_threshold(p);
  StreamScratch<unsigned char> bitmap(s);  // the mask drawn once where x is read per rank tile
  if (threshold != 0u && r > (tensor_cores ? kMmaMaxRankTile : kMaxRankTile))
    PLORA_TRY(bitmap.allocate(tensor_cores ? mma_bitmap_bytes(m, k) : da_dx_bitmap_bytes(m, k),
                              "da_dx (dropout bitmap)"));
  if (tensor_cores) {
    PLORA_MMA_DISPATCH(launch_da_dx_mma, dtype, grid, x, ld_x, ds, ld_ds, a, ld_a, part.ptr, dx, ld_dx, m, k, r,
                       1.0f / (1.0f - p), threshold, seed, stream_id, bitmap.ptr, s);
  } else {
    const int bytes = kLaneCols * static_cast<int>(dtype_size(dtype));
    const bool vector = vector_rows(x, ld_x, dtype, bytes) && (dx == nullptr || vector_rows(dx, ld_dx, dtype, bytes));
    PLORA_LORA_DISPATCH(launch_da_dx, dtype, vector, r, grid, x, ld_x, ds, ld_ds, a, ld_a, part.ptr, dx, ld_dx, m, k,
                        r, 1.0f / (1.0f - p), threshold, seed, stream_id, bitmap.ptr, s);
  }
  PLORA_TRY(launch_status("da_dx"));
  return sum_partials(part.ptr, grid.x, r, k, da, PLORA_F32, ld_da, 1.0f, true, s, "da_dx (da)");
}

}  // extern "C"
