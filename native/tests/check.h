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

#endif
