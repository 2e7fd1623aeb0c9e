// Warp-level matrix instructions of the tensor-core kernels.
//
// Tensor-core matrix multiply-accumulate, mma_m16n8k16<kHalf>: one warp's
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (.f16.f16 when kHalf), D (16x8, fp32) =
// A (16x16, bf16 or IEEE half, row-major) B (16x8, the same, col-major) + C (16x8, fp32). Every
// lane of the warp must call it together (the full mask, no lane exited), each with its fragments
// in the PTX ISA's layout ("Matrix Fragments for mma.m16n8k16 with floating point type"; the
// simulator's twin in native/tests/sim/scheduler.cpp spells the formulas out):
//   a[4]: 16-bit pairs of A, b[2]: 16-bit pairs of B (lower-numbered element in the low half),
//   c[4], d[4]: fp32 elements of C and D; d may be c.
//
// Transpose of an 8x8 matrix of 16-bit elements held by a warp, one .b32 per lane:
// movmatrix.sync.aligned.m8n8.trans.b16. Lane l brings row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1
// (the lower-numbered in the low half) and takes the same elements of the transpose, i.e. column
// l / 4 of rows 2 (l % 4) and 2 (l % 4) + 1: pairs along a column of what the warp loaded as rows.
//
// On the device each is the instruction itself (sm_80 and later); in the CUDA simulator a warp
// collective that checks that the whole warp is there and computes every lane's result. See
// docs/simulator.md and docs/kernels.md.
#ifndef PLORA_CUDA_MMA_CUH
#define PLORA_CUDA_MMA_CUH

#include <cstdint>

namespace plora {

#if defined(PLORA_SIM_CUDA_RUNTIME_H)
// The call site, for the simulator's reports (a collective is matched by where it is called).
template <bool kHalf>
inline void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                         const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::sim::mma_m16n8k16(d, a, b, c, kHalf, file, line);
}
inline uint32_t movmatrix_m8n8_trans_b16(uint32_t a, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return ::sim::movmatrix_m8n8_trans_b16(a, file, line);
}
#else
template <bool kHalf>
__device__ __forceinline__ void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define PLORA_MMA_M16N8K16(type)                                                                                 \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." type "." type ".f32 "                                   \
               "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};\n"                          \
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                                                 \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), \
                 "f"(c[3]))
  if constexpr (kHalf) PLORA_MMA_M16N8K16("f16");
  else PLORA_MMA_M16N8K16("bf16");
#undef PLORA_MMA_M16N8K16
#elif defined(__CUDA_ARCH__)
  __trap();  // no tensor cores before sm_80: the host never selects a path that needs them there
#endif
}

__device__ __forceinline__ uint32_t movmatrix_m8n8_trans_b16(uint32_t a) {
  uint32_t d = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(d) : "r"(a));
#elif defined(__CUDA_ARCH__)
  __trap();
#endif
  return d;
}
#endif

}  // namespace plora

#endif
