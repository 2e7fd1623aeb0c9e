// The simulator's device math functions that the host's libm lacks, against CUDA's definitions:
// cospif (cos(pi x), the normal fill's cosine). Compiled through translate.cmake like the
// project's kernels.
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <vector>

#include "../check.h"

namespace {

__global__ void cospif_kernel(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = cospif(x[i]);
}

std::vector<float> cospif_on_device(const std::vector<float>& x) {
  const int n = static_cast<int>(x.size());
  float *dx = nullptr, *dy = nullptr;
  cudaMalloc(reinterpret_cast<void**>(&dx), n * sizeof(float));
  cudaMalloc(reinterpret_cast<void**>(&dy), n * sizeof(float));
  cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice);
  cospif_kernel<<<(n + 127) / 128, 128>>>(dx, dy, n);
  std::vector<float> y(n, 12345.0f);
  cudaMemcpy(y.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(dx);
  cudaFree(dy);
  return y;
}

// The exact values CUDA documents (cospif(n + 1/2) = +0, cospif(±inf) = NaN) and the even and
// periodic symmetries, bit for bit.
void test_cospif_exact() {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {0.0f, -0.0f, 0.5f, 1.0f, 1.5f, 2.0f, -0.5f, -1.0f, 3.0f, 16777216.0f, 16777217.0f * 2,
                                8388609.0f, inf, -inf, nan};
  const std::vector<float> want = {1.0f, 1.0f, 0.0f, -1.0f, 0.0f, 1.0f, 0.0f, -1.0f, -1.0f, 1.0f, 1.0f,
                                   -1.0f, nan, nan, nan};
  const std::vector<float> got = cospif_on_device(x);
  for (size_t i = 0; i < x.size(); ++i) {
    const bool same = std::isnan(want[i]) ? std::isnan(got[i])
                                          : got[i] == want[i] && std::signbit(got[i]) == std::signbit(want[i]);
    CHECK(same, "cospif(%g) = %g, CUDA gives %g", x[i], got[i], want[i]);
  }
}

// Over [-4, 4] and near the zeros: within one unit in the last place of cos(pi x) in long double.
void test_cospif_accuracy() {
  std::vector<float> x;
  for (int i = -4000; i <= 4000; ++i) x.push_back(static_cast<float>(i) / 1000.0f);
  for (float z : {0.5f, 1.5f, -0.5f, 2.5f})
    for (int k = 1; k < 40; ++k) {
      x.push_back(std::nextafter(z, 10.0f) + static_cast<float>(k) * 1e-7f);
      x.push_back(std::nextafter(z, -10.0f) - static_cast<float>(k) * 1e-7f);
    }
  const std::vector<float> got = cospif_on_device(x);
  double worst_ulps = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const long double want = std::cos(3.14159265358979323846264338327950288L * static_cast<long double>(x[i]));
    const double ulp = std::nextafter(std::fabs(static_cast<float>(want)), 10.0f) - std::fabs(static_cast<float>(want));
    // long double's pi leaves cos(pi/2) about 1e-20 off zero: that much is not the function's error
    const long double error = std::max(0.0L, std::fabs(got[i] - want) - 1e-18L);
    worst_ulps = std::max(worst_ulps, static_cast<double>(error / ulp));
    CHECK(std::isfinite(got[i]) && std::fabs(got[i]) <= 1.0f, "cospif(%.9g) = %g", x[i], got[i]);
  }
  CHECK(worst_ulps <= 1.0, "cospif: worst error %.3g ulp against long double", worst_ulps);
}

}  // namespace

int main() {
  test_cospif_exact();
  test_cospif_accuracy();
  std::printf("%s (%d failures)\n", g_failures ? "FAILED" : "OK", g_failures);
  return g_failures ? 1 : 0;
}
