// exp and the normal distribution's cdf and pdf on eight fp32 lanes for the host kernels (GELU and
// its derivative). AVX2 builds evaluate polynomials; other builds call libm lane by lane (in double
// where fp32 would lose the tail). Both are checked against float64.
#ifndef PLORA_CPU_VMATH_H
#define PLORA_CPU_VMATH_H

#include <cmath>

#include "rows.h"

namespace plora {

#if defined(__AVX2__)
inline __m256 as_m256(v8 x) {
  __m256 m;
  __builtin_memcpy(&m, &x, sizeof m);
  return m;
}

inline v8 from_m256(__m256 m) {
  v8 x;
  __builtin_memcpy(&x, &m, sizeof x);
  return x;
}

// 2^e for integer-valued e in [-126, 127], built in the exponent field
inline __m256 pow2(__m256i e) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
}
#endif

// a·b + c: one rounding where the build has FMA (x86-64-v3), two otherwise
inline v8 fma8(v8 a, v8 b, v8 c) {
#if defined(__AVX2__) && defined(__FMA__)
  return from_m256(_mm256_fmadd_ps(as_m256(a), as_m256(b), as_m256(c)));
#else
  return a * b + c;
#endif
}

inline v8 v8_abs(v8 x) {
  typedef uint32_t u32x8 __attribute__((vector_size(32)));
  u32x8 u;
  __builtin_memcpy(&u, &x, sizeof u);
  u &= 0x7fffffffu;
  __builtin_memcpy(&x, &u, sizeof x);
  return x;
}

#if defined(__AVX2__)
// e^(a + b) for |b| small beside |a| (a sum that fp32 could not hold exactly): s = a + b picks
// n = round(s/ln2), and f = a - n·ln2 + b is formed with ln2 split in two (n·ln2_hi and a - n·ln2_hi
// are exact), so b's low bits survive. e^f by the Cephes expf polynomial (|f| <= ln2/2), then 2^n
// applied in two halves so that subnormal results come out right. Within 2 ulp of e^(a+b);
// overflows to inf, underflows to 0, NaN stays NaN.
inline __m256 exp_sum(__m256 a, __m256 b) {
  const __m256 s = _mm256_add_ps(a, b);
  const __m256 sc = _mm256_min_ps(_mm256_max_ps(s, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(88.72283935546875f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(sc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 f = _mm256_add_ps(_mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a), b);
  f = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), f);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(f, f), f), _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n), half = _mm256_srai_epi32(ni, 1);  // n in [-150, 128]
  __m256 r = _mm256_mul_ps(_mm256_mul_ps(y, pow2(half)), pow2(_mm256_sub_epi32(ni, half)));
  r = _mm256_blendv_ps(r, _mm256_setzero_ps(), _mm256_cmp_ps(s, _mm256_set1_ps(-104.0f), _CMP_LT_OQ));
  r = _mm256_blendv_ps(r, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(s, _mm256_set1_ps(88.72283935546875f), _CMP_GT_OQ));
  return _mm256_blendv_ps(r, s, _mm256_cmp_ps(s, s, _CMP_UNORD_Q));
}

// x²/2 = hi + lo exactly; lo = 0 where x²/2 overflows (|x| > 2.6e19) or x is not finite, so that
// no inf - inf or NaN appears downstream
inline void half_square(__m256 x, __m256* hi, __m256* lo) {
  const __m256 half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
  *hi = _mm256_mul_ps(half_x, x);
  const __m256 rest = _mm256_fmsub_ps(half_x, x, *hi);
  const __m256 magnitude = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), rest);
  *lo = _mm256_and_ps(rest, _mm256_cmp_ps(magnitude, _mm256_set1_ps(INFINITY), _CMP_LT_OQ));
}
#endif

inline v8 v8_exp(v8 x) {
#if defined(__AVX2__)
  return from_m256(exp_sum(as_m256(x), _mm256_setzero_ps()));
#else
  v8 r;
  for (int l = 0; l < 8; ++l) r[l] = std::exp(x[l]);
  return r;
#endif
}

// Φ(x) = P(N(0,1) <= x) = erfc(|x|/√2)/2 or 1 minus that, accurate in both tails. erfc(z) for
// z >= 0 is Numerical Recipes' erfcc, t·exp(P(t) - z²) with t = 1/(1 + z/2) (fractional error
// below 1.2e-7 for every z), and z² = x²/2 is taken exactly from x, so the tail's relative error
// does not grow with |x| (1 - erf would cancel there).
inline v8 v8_normal_cdf(v8 x) {
#if defined(__AVX2__)
  const __m256 xm = as_m256(x);
  __m256 hi, lo;
  half_square(xm, &hi, &lo);
  const __m256 z = as_m256(v8_abs(x) * v8_splat(0.70710678118654752f));
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
  const float c[] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                     -0.18628806f, 0.09678418f, 0.37409196f, 1.00002368f, -1.26551223f};
  __m256 p = _mm256_set1_ps(c[0]);
  for (int i = 1; i < 10; ++i) p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(c[i]));
  const __m256 erfc = _mm256_mul_ps(t, exp_sum(_mm256_sub_ps(_mm256_setzero_ps(), hi), _mm256_sub_ps(p, lo)));
  const v8 half_tail = v8_splat(0.5f) * from_m256(erfc);
#else
  v8 half_tail;
  for (int l = 0; l < 8; ++l)  // in double: z = |x|/√2 rounded to fp32 would cost the tail its accuracy
    half_tail[l] = static_cast<float>(0.5 * std::erfc(std::fabs(static_cast<double>(x[l])) * 0.70710678118654752));
#endif
  return x < v8_splat(0.0f) ? half_tail : v8_splat(1.0f) - half_tail;
}

// φ(x) = exp(-x²/2)/√(2π), with x²/2 taken exactly as above.
inline v8 v8_normal_pdf(v8 x) {
#if defined(__AVX2__)
  __m256 hi, lo;
  half_square(as_m256(x), &hi, &lo);
  const __m256 zero = _mm256_setzero_ps();
  return from_m256(_mm256_mul_ps(exp_sum(_mm256_sub_ps(zero, hi), _mm256_sub_ps(zero, lo)),
                                 _mm256_set1_ps(0.39894228040143268f)));
#else
  v8 r;
  for (int l = 0; l < 8; ++l) {
    const double v = x[l];
    r[l] = static_cast<float>(0.39894228040143268 * std::exp(-0.5 * v * v));
  }
  return r;
#endif
}

// Four doubles: e^x within about 1 ulp (Taylor to degree 13 after reduction by ln2 split in two,
// fdlibm's constants; 2^n applied in two halves). Overflows to inf, underflows to 0, NaN stays NaN.
typedef double d4 __attribute__((vector_size(32)));

inline d4 d4_exp(d4 v) {
#if defined(__AVX2__)
  __m256d x;
  __builtin_memcpy(&x, &v, sizeof x);
  const __m256d xc = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-746.0)), _mm256_set1_pd(710.0));
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(xc, _mm256_set1_pd(1.4426950408889634)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), xc);  // exact
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);
  double inverse_factorial = 1.0;
  double c[14];
  for (int k = 0; k < 14; ++k) {
    c[k] = inverse_factorial;
    inverse_factorial /= k + 1;
  }
  __m256d p = _mm256_set1_pd(c[13]);
  for (int k = 12; k >= 0; --k) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c[k]));
  const __m128i ni = _mm256_cvtpd_epi32(n), half = _mm_srai_epi32(ni, 1);  // n in [-1077, 1024]
  auto pow2 = [](__m128i e) {
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(e), _mm256_set1_epi64x(1023)), 52));
  };
  __m256d y = _mm256_mul_pd(_mm256_mul_pd(p, pow2(half)), pow2(_mm_sub_epi32(ni, half)));
  y = _mm256_blendv_pd(y, _mm256_setzero_pd(), _mm256_cmp_pd(x, _mm256_set1_pd(-745.2), _CMP_LT_OQ));
  y = _mm256_blendv_pd(y, _mm256_set1_pd(INFINITY), _mm256_cmp_pd(x, _mm256_set1_pd(709.79), _CMP_GT_OQ));
  y = _mm256_blendv_pd(y, x, _mm256_cmp_pd(x, x, _CMP_UNORD_Q));
  d4 out;
  __builtin_memcpy(&out, &y, sizeof out);
  return out;
#else
  d4 out;
  for (int l = 0; l < 4; ++l) out[l] = std::exp(v[l]);
  return out;
#endif
}

}  // namespace plora

#endif
