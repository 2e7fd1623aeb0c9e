// A tiny assertion and random-data kit for the native tests.
#ifndef PLORA_TESTS_CHECK_H
#define PLORA_TESTS_CHECK_H

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

static int g_failures = 0;

#define CHECK(cond, ...)                                            \
  do {                                                              \
    if (!(cond)) {                                                  \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__);              \
      std::printf(__VA_ARGS__);                                     \
      std::printf("\n");                                            \
      ++g_failures;                                                 \
    }                                                               \
  } while (0)

inline std::vector<float> random_floats(size_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// ||out - ref|| / ||ref|| over a dense m x n block of out (leading dimension ld).
inline double relative_error(const float* out, int64_t ld, const std::vector<double>& ref,
                             int64_t m, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double d = out[i * ld + j] - ref[i * n + j];
      num += d * d;
      den += ref[i * n + j] * ref[i * n + j];
    }
  if (std::isnan(num)) return INFINITY;
  return std::sqrt(num) / (den > 0 ? std::sqrt(den) : 1.0);
}

// GELU at its special inputs, the same on every backend: out = gelu(x) and grad = gelu'(x)
// (an upstream gradient of 1) for x = kGeluSpecials, checked against what the function must give.
constexpr int kGeluSpecialCount = 11;
constexpr float kGeluSpecials[kGeluSpecialCount] = {NAN,     INFINITY, -INFINITY, 0.0f,  -0.0f, 1e-30f,
                                                    -1e-30f, 88.0f,    -12.5f,    1e20f, -3e38f};
inline void check_gelu_specials(const char* backend, const float (&out)[kGeluSpecialCount],
                                const float (&grad)[kGeluSpecialCount]) {
  CHECK(std::isnan(out[0]) && std::isnan(grad[0]), "%s: gelu(NaN) is NaN", backend);
  CHECK(out[1] == INFINITY, "%s: gelu(inf) = inf: %g", backend, out[1]);
  CHECK(std::isnan(out[2]), "%s: gelu(-inf) = -inf * 0 is NaN, as x * Phi(x) gives: %g", backend, out[2]);
  CHECK(out[3] == 0.0f && out[4] == 0.0f && grad[3] == 0.5f, "%s: gelu(0) = 0, slope 1/2: %g %g", backend, out[3], grad[3]);
  CHECK(out[5] == 0.5e-30f && out[6] == -0.5e-30f, "%s: gelu near 0 is x/2: %g %g", backend, out[5], out[6]);
  CHECK(out[7] == 88.0f && grad[7] == 1.0f, "%s: gelu(88) = 88: %g %g", backend, out[7], grad[7]);
  const double tail = -12.5 * 0.5 * std::erfc(12.5 / std::sqrt(2.0));  // about -1e-35
  CHECK(std::fabs(out[8] - tail) <= 1e-6 * std::fabs(tail), "%s: gelu(-12.5) = %g, float64 %g", backend, out[8], tail);
  // large finite inputs, where x²/2 overflows: gelu is x or -0, its slope 1 or 0, never NaN
  CHECK(out[9] == 1e20f && grad[9] == 1.0f, "%s: gelu(1e20) = %g, slope %g", backend, out[9], grad[9]);
  CHECK(out[10] == 0.0f && grad[10] == 0.0f, "%s: gelu(-3e38) = %g, slope %g", backend, out[10], grad[10]);
}

#endif
