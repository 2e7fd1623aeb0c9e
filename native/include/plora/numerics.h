/* Element numerics shared by the C++ and CUDA kernels: bf16 / f16 <-> f32 conversion with
 * round-to-nearest-even, and dtype-dispatched loads and stores. Host and device run exactly this
 * code, so the CPU tests exercise the numerics the GPU runs. */
#ifndef PLORA_NUMERICS_H
#define PLORA_NUMERICS_H

#include <stdint.h>
#include <string.h>

#include "plora/plora.h"

#if defined(__CUDACC__)
#define PLORA_HD __host__ __device__ __forceinline__
#else
#define PLORA_HD inline
#endif

namespace plora {

PLORA_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
#endif
}

PLORA_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
#endif
}

PLORA_HD float bf16_to_f32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

/* Round to nearest even; NaN stays a (quiet) NaN, overflow rounds to infinity. */
PLORA_HD uint16_t f32_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

PLORA_HD float f16_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1fu) return bits_float(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp == 0) {
    if (man == 0) return bits_float(sign);
    // subnormal: man * 2^-24, exact in f32
    float v = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

/* Round to nearest even, with subnormals, overflow to infinity, NaN kept. */
PLORA_HD uint16_t f32_to_f16(float f) {
  uint32_t u = float_bits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520
  if (a < 0x38800000u) {                                               // below 2^-14: subnormal
    if (a < 0x33000000u) return sign;                                  // below 2^-25: zero
    uint32_t exp = a >> 23;
    uint32_t man = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - exp;  // 14..24 -> value man * 2^(exp-150) in units of 2^-24
    uint32_t half = 1u << (shift - 1);
    uint32_t rest = man & ((1u << shift) - 1u);
    uint32_t r = man >> shift;
    if (rest > half || (rest == half && (r & 1u))) r += 1u;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t r = a - 0x38000000u;  // rebias exponent 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return static_cast<uint16_t>(sign | (r >> 13));
}

/* Stochastic rounding to bf16: adds 16 random bits (the low 16 of `random`) below the kept ones,
 * then truncates, so the result rounds up with probability equal to the dropped fraction
 * (unbiased). Non-finite values round to nearest. */
PLORA_HD uint16_t f32_to_bf16_stochastic(float f, uint32_t random) {
  uint32_t u = float_bits(f);
  if ((u & 0x7f800000u) == 0x7f800000u) return f32_to_bf16(f);
  return static_cast<uint16_t>((u + (random & 0xffffu)) >> 16);
}

PLORA_HD float load_f32(const void* base, int dtype, int64_t i) {
  switch (dtype) {
    case PLORA_BF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
    case PLORA_F16: return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: return static_cast<const float*>(base)[i];
  }
}

PLORA_HD void store_f32(void* base, int dtype, int64_t i, float v) {
  switch (dtype) {
    case PLORA_BF16: static_cast<uint16_t*>(base)[i] = f32_to_bf16(v); break;
    case PLORA_F16: static_cast<uint16_t*>(base)[i] = f32_to_f16(v); break;
    // only fills store I32, with an integer in int32 range (check_fill_args)
    case PLORA_I32: static_cast<int32_t*>(base)[i] = static_cast<int32_t>(v); break;
    default: static_cast<float*>(base)[i] = v; break;
  }
}

/* v rounded to the dtype, as a store and a load would (identity for F32): where Hugging Face
 * rounds an intermediate to the model dtype, the kernels do the same. */
PLORA_HD float round_f32(int dtype, float v) {
  switch (dtype) {
    case PLORA_BF16: return bf16_to_f32(f32_to_bf16(v));
    case PLORA_F16: return f16_to_f32(f32_to_f16(v));
    default: return v;
  }
}

PLORA_HD int dtype_size(int dtype) { return dtype == PLORA_F32 || dtype == PLORA_I32 ? 4 : 2; }

/* The float dtypes, which kernels compute on (in fp32). */
PLORA_HD bool dtype_valid(int dtype) {
  return dtype == PLORA_F32 || dtype == PLORA_BF16 || dtype == PLORA_F16;
}

/* Every storage type: the float dtypes and I32, which is only copied and filled. */
PLORA_HD bool dtype_storable(int dtype) { return dtype_valid(dtype) || dtype == PLORA_I32; }

}  // namespace plora

#endif
