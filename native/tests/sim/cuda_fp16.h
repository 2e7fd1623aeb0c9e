// CUDA's half and bfloat16 conversions that plora's kernels use, for the CUDA simulator
// (cuda_bf16.h includes this file). They model the device's cvt.rn.f16.f32 / cvt.rn.bf16.f32 and
// cvt.f32.f16: round to nearest even, subnormals kept, overflow to infinity, and a NaN becomes the
// canonical NaN 0x7fff (its payload is not kept). Written apart from plora/numerics.h (the host
// compiler's _Float16 for half, exact double arithmetic for bfloat16), so that the simulator's
// own test checks them against known bits and the parity test checks the kernels against the
// host conversions. A test tool: never part of a shipped library. See docs/simulator.md.
#ifndef PLORA_SIM_CUDA_FP16_H
#define PLORA_SIM_CUDA_FP16_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

struct __half {
  unsigned short x;
};
struct __nv_bfloat16 {
  unsigned short x;
};

inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16{u}; }

inline __half __float2half_rn(float f) {
  if (std::isnan(f)) return __half{0x7fff};
  const _Float16 h = static_cast<_Float16>(f);  // IEEE conversion: round to nearest even
  unsigned short u;
  std::memcpy(&u, &h, sizeof u);
  return __half{u};
}

inline float __half2float(__half h) {
  _Float16 v;
  std::memcpy(&v, &h.x, sizeof v);
  return static_cast<float>(v);
}

// bfloat16 keeps 8 significant bits: f rounded to a multiple of 2^(e - 7), e = its binary
// exponent (at least -126, where bfloat16's subnormals start), in exact double arithmetic.
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  if (std::isnan(f)) return __nv_bfloat16{0x7fff};
  float r = f;
  if (std::isfinite(f) && f != 0.0f) {
    const double d = f;
    const int e = std::max(std::ilogb(d), -126);
    const double ulp = std::ldexp(1.0, e - 7);
    r = static_cast<float>(std::nearbyint(d / ulp) * ulp);  // ties to even; past the top: infinity
  }
  uint32_t bits;
  std::memcpy(&bits, &r, sizeof bits);
  return __nv_bfloat16{static_cast<unsigned short>(bits >> 16)};
}

inline float __bfloat162float(__nv_bfloat16 h) {
  const uint32_t bits = static_cast<uint32_t>(h.x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

#endif
