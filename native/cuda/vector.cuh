// The building blocks of the bandwidth-bound kernels (elementwise, reductions, SwiGLU, AdamW):
// storage dtypes as template parameters (dispatched once on the host), 16-byte vector loads and
// stores of packs of elements, and the walk of a matrix's rows with a scalar head and tail around
// the aligned packs. Design and expected bandwidth: docs/kernels.md, "Bandwidth-bound kernels on the GPU".
#ifndef PLORA_CUDA_VECTOR_CUH
#define PLORA_CUDA_VECTOR_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "launch.cuh"
#include "plora/numerics.h"

namespace plora {

// ---- storage dtypes: the bits in memory and their conversion to and from fp32 ----
// Stores round to nearest even with the hardware conversions (cvt.rn.bf16.f32, cvt.rn.f16.f32):
// the same values as plora/numerics.h's f32_to_bf16 / f32_to_f16, but a NaN becomes the canonical
// NaN 0x7fff instead of keeping its payload.
struct F32 {
  using Bits = float;
  static __device__ __forceinline__ float load(float b) { return b; }
  static __device__ __forceinline__ float store(float v) { return v; }
};
struct BF16 {
  using Bits = uint16_t;
  static __device__ __forceinline__ float load(uint16_t b) { return bf16_to_f32(b); }  // exact: a shift
  static __device__ __forceinline__ uint16_t store(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
};
struct F16 {
  using Bits = uint16_t;
  static __device__ __forceinline__ float load(uint16_t b) { return __half2float(__ushort_as_half(b)); }
  static __device__ __forceinline__ uint16_t store(float v) { return __half_as_ushort(__float2half_rn(v)); }
};
struct I32 {  // only filled: an integer in int32 range (check_fill_args)
  using Bits = int32_t;
  static __device__ __forceinline__ float load(int32_t b) { return static_cast<float>(b); }
  static __device__ __forceinline__ int32_t store(float v) { return static_cast<int32_t>(v); }
};

// f(T{}) for the tag T of a float dtype (the argument checks have refused any other code).
template <class F>
int with_float_dtype(int dtype, F&& f) {
  switch (dtype) {
    case PLORA_BF16: return f(BF16{});
    case PLORA_F16: return f(F16{});
    default: return f(F32{});
  }
}

// The same for every storage dtype, I32 included.
template <class F>
int with_storable_dtype(int dtype, F&& f) {
  if (dtype == PLORA_I32) return f(I32{});
  return with_float_dtype(dtype, f);
}

// ---- packs: N elements in one or two 16-byte accesses (8 bytes for 4 two-byte elements) ----

constexpr int kPack = 8;    // elements per pack in the row walk: 16 bytes of a 2-byte dtype
constexpr int kUnroll = 2;  // packs per thread in flight: all loaded before any is stored

// Elements to and from 32-bit words (little-endian, as memory holds them): the packs are built
// in registers so that each store is one st.global.v4 (a memcpy into a uint4 is split by nvcc).
__device__ __forceinline__ uint32_t word_bits(float v) { return __float_as_uint(v); }
__device__ __forceinline__ uint32_t word_bits(int32_t v) { return static_cast<uint32_t>(v); }
__device__ __forceinline__ void from_word(uint32_t w, float* b) { b[0] = __uint_as_float(w); }
__device__ __forceinline__ void from_word(uint32_t w, int32_t* b) { b[0] = static_cast<int32_t>(w); }
__device__ __forceinline__ void from_word(uint32_t w, uint16_t* b) {
  b[0] = static_cast<uint16_t>(w);
  b[1] = static_cast<uint16_t>(w >> 16);
}
template <class B>
__device__ __forceinline__ uint32_t to_word(const B* b) {
  if constexpr (sizeof(B) == 2) return b[0] | static_cast<uint32_t>(b[1]) << 16;
  else return word_bits(b[0]);
}

// The kWords 32-bit words at p (aligned to 4 * kWords bytes, at most 16), in 16- or 8-byte accesses.
template <int kWords>
__device__ __forceinline__ void load_words(const void* p, uint32_t (&w)[kWords]) {
  static_assert(kWords == 2 || kWords % 4 == 0, "8 bytes or whole 16-byte vectors");
  if constexpr (kWords == 2) {
    const uint2 v = *static_cast<const uint2*>(p);
    w[0] = v.x, w[1] = v.y;
  } else {
#pragma unroll
    for (int k = 0; k < kWords / 4; ++k) {
      const uint4 v = static_cast<const uint4*>(p)[k];
      w[4 * k] = v.x, w[4 * k + 1] = v.y, w[4 * k + 2] = v.z, w[4 * k + 3] = v.w;
    }
  }
}

template <int kWords>
__device__ __forceinline__ void store_words(void* p, const uint32_t (&w)[kWords]) {
  static_assert(kWords == 2 || kWords % 4 == 0, "8 bytes or whole 16-byte vectors");
#if defined(__CUDA_ARCH__)
  // PTX stores: inside the row walk nvcc splits a uint4 store whose words came from the element
  // type back into 4-byte stores, alignment stated or not.
  if constexpr (kWords == 2) {
    asm volatile("st.global.v2.b32 [%0], {%1, %2};" ::"l"(p), "r"(w[0]), "r"(w[1]) : "memory");
  } else {
#pragma unroll
    for (int k = 0; k < kWords / 4; ++k)
      asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(static_cast<char*>(p) + 16 * k), "r"(w[4 * k]),
                   "r"(w[4 * k + 1]), "r"(w[4 * k + 2]), "r"(w[4 * k + 3])
                   : "memory");
  }
#else
  if constexpr (kWords == 2) {
    *static_cast<uint2*>(p) = uint2{w[0], w[1]};
  } else {
#pragma unroll
    for (int k = 0; k < kWords / 4; ++k)
      static_cast<uint4*>(p)[k] = uint4{w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3]};
  }
#endif
}

// N elements of bits b in 32-bit words, and back.
template <class B, int N>
constexpr int kPackWords = N * static_cast<int>(sizeof(B)) / 4;

template <class B, int N>
__device__ __forceinline__ void store_bits(B* p, const B (&b)[N]) {
  constexpr int kPer = 4 / sizeof(B);  // elements per word
  uint32_t w[kPackWords<B, N>];
#pragma unroll
  for (int k = 0; k < kPackWords<B, N>; ++k) w[k] = to_word(b + k * kPer);
  store_words(p, w);
}

// v[0, N) = the N elements at p, which is aligned to the pack's width (at most 16 bytes).
template <class T, int N>
__device__ __forceinline__ void load_pack(const typename T::Bits* p, float (&v)[N]) {
  using B = typename T::Bits;
  constexpr int kPer = 4 / sizeof(B);
  uint32_t w[kPackWords<B, N>];
  load_words(p, w);
  B b[N];
#pragma unroll
  for (int k = 0; k < kPackWords<B, N>; ++k) from_word(w[k], b + k * kPer);
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = T::load(b[k]);
}

template <class T, int N>
__device__ __forceinline__ void store_pack(typename T::Bits* p, const float (&v)[N]) {
  typename T::Bits b[N];
#pragma unroll
  for (int k = 0; k < N; ++k) b[k] = T::store(v[k]);
  store_bits(p, b);
}

// Is p + h aligned for a pack of N elements (its width, at most 16 bytes)?
template <int N, class B>
__device__ __forceinline__ bool pack_aligned(const B* p, int h) {
  constexpr uintptr_t kAlign = N * sizeof(B) < 16 ? N * sizeof(B) : 16;
  return reinterpret_cast<uintptr_t>(p + h) % kAlign == 0;
}

// The first column h < N at which every operand's pack is aligned, capped at cols; cols (all
// scalar) when there is none: operands misaligned against each other take the scalar path.
template <int N, class... B>
__device__ __forceinline__ int64_t pack_head(int64_t cols, const B*... p) {
  for (int h = 0; h < N; ++h)
    if ((pack_aligned<N>(p, h) && ...)) return h < cols ? h : cols;
  return cols;
}

// ---- the row walk ----
//
// A kernel's operation describes one row: `op.row(i)` returns a Row with the row's operand
// pointers and
//   int64_t head(int64_t cols)                   the scalar elements before the first aligned pack,
//   void element(int64_t j, Acc& acc)            column j alone,
//   void load(int64_t j, Regs& r)                the inputs of the pack at j into registers,
//   void store(int64_t j, const Regs& r, Acc& acc) its outputs (or its share of a reduction).
// Rows along the grid's y dimension, packs along x, both grid-stride; no division anywhere.

template <class Op>
__device__ __forceinline__ void walk_rows(const Op& op, int64_t rows, int64_t cols, typename Op::Acc& acc) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.y; i < rows; i += gridDim.y) {
    const auto row = op.row(i);
    const int64_t head = row.head(cols);
    const int64_t packs = (cols - head) / kPack, tail = head + packs * kPack;
    // the head (fewer than kPack elements, or the whole row when the operands are misaligned
    // against each other) and the tail (fewer than kPack) go element by element
    for (int64_t j = t; j < head; j += threads) row.element(j, acc);
    if (t < cols - tail) row.element(tail + t, acc);
    for (int64_t q = t; q < packs; q += kUnroll * threads) {
      typename Op::Regs r[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (q + u * threads < packs) row.load(head + (q + u * threads) * kPack, r[u]);
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (q + u * threads < packs) row.store(head + (q + u * threads) * kPack, r[u], acc);
    }
  }
}

struct NoAcc {};  // the accumulator of a walk that only stores

// A map over a matrix: one walk of op's rows. Launched through a named pointer per kernel
// (`const auto copy_kernel = walk_kernel<CopyOp<S, D>>;`), which names it in the simulator too.
template <class Op>
__global__ void __launch_bounds__(256) walk_kernel(Op op, int64_t rows, int64_t cols) {
  NoAcc acc;
  walk_rows(op, rows, cols, acc);
}

// The grid of a row walk: x over a row's packs (kUnroll per thread), y over the rows, each capped;
// at most max_blocks blocks in all when given (the reductions' one partial per block).
inline dim3 walk_grid(int64_t rows, int64_t cols, int threads, int64_t max_blocks = 0) {
  const int64_t x = blocks_for((cols + kPack * kUnroll - 1) / (kPack * kUnroll), threads);
  if (max_blocks > 0) {
    const unsigned gx = capped_grid(x, max_blocks);
    return dim3(gx, capped_grid(rows, std::max<int64_t>(max_blocks / gx, 1)));
  }
  return dim3(capped_grid(x, 65535), capped_grid(std::max<int64_t>(rows, 1), 65535));
}

// (row, column) of element e of a matrix with `cols` columns, without a 64-bit division: the
// quotient from e * (1 / cols) in double (off by at most one below 2^50), then corrected.
struct RowCol {
  int64_t row, col;
};
__device__ __forceinline__ RowCol split_index(int64_t e, int64_t cols, double inv_cols) {
  int64_t q = static_cast<int64_t>(static_cast<double>(e) * inv_cols);
  int64_t r = e - q * cols;
  if (r < 0) {
    --q;
    r += cols;
  } else if (r >= cols) {
    ++q;
    r -= cols;
  }
  return {q, r};
}

}  // namespace plora

#endif
