// CUDA kernels against the C++ implementation on random data of awkward shapes. Exits 77
// (skipped) with the reason when no CUDA device is usable.
#include <cuda_runtime.h>

#include <cstring>

#include "check.h"
#include "plora/cpu.h"
#include "plora/cuda.h"
#include "plora/numerics.h"

using namespace plora;

namespace {

struct Device {
  void* ptr = nullptr;
  explicit Device(size_t bytes) { cudaMalloc(&ptr, bytes); }
  ~Device() { cudaFree(ptr); }
};

// The same rows x cols matrix (leading dimension ld, element size es) produced on both sides.
void compare(const char* what, const std::vector<char>& host, const Device& dev, int dtype, int64_t ld,
             int64_t rows, int64_t cols, double tol) {
  const size_t es = dtype_size(dtype);
  std::vector<char> back(host.size());
  cudaMemcpy(back.data(), dev.ptr, back.size(), cudaMemcpyDeviceToHost);
  std::vector<double> ref(rows * cols);
  std::vector<float> got(rows * ld);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) ref[i * cols + j] = load_f32(host.data(), dtype, i * ld + j);
  plora_cpu_copy(back.data(), dtype, ld, got.data(), PLORA_F32, ld, rows, cols);
  double err = relative_error(got.data(), ld, ref, rows, cols);
  CHECK(err <= tol, "%s dtype=%d [%lld,%lld]: CUDA vs CPU rel err %g", what, dtype, (long long)rows,
        (long long)cols, err);
  (void)es;
}

void test_shrink(int64_t m, int64_t k, int64_t r, float p, int dtype, std::mt19937_64& rng) {
  const int64_t ldx = k + 3, lda = k + 1, ldo = r + 5;
  const size_t es = dtype_size(dtype);
  std::vector<float> x32 = random_floats(m * ldx, rng), a32 = random_floats(r * lda, rng);
  std::vector<char> x(m * ldx * es), a(r * lda * es), out(m * ldo * es), mask(m * k * es);
  plora_cpu_copy(x32.data(), PLORA_F32, ldx, x.data(), dtype, ldx, m, ldx);
  plora_cpu_copy(a32.data(), PLORA_F32, lda, a.data(), dtype, lda, r, lda);
  plora_cpu_fill(out.data(), dtype, ldo, m, ldo, 0.0f);
  plora_cpu_shrink(x.data(), ldx, a.data(), lda, out.data(), ldo, dtype, m, k, r, 0.5f, p, 99, 3);
  plora_cpu_dropout_mask(mask.data(), dtype, k, m, k, p, 99, 3);

  Device dx(x.size()), da(a.size()), dout(out.size()), dmask(mask.size());
  cudaMemcpy(dx.ptr, x.data(), x.size(), cudaMemcpyHostToDevice);
  cudaMemcpy(da.ptr, a.data(), a.size(), cudaMemcpyHostToDevice);
  CHECK(plora_cuda_fill(dout.ptr, dtype, ldo, m, ldo, 0.0f, nullptr) == PLORA_OK, "fill: %s", plora_cuda_last_error());
  CHECK(plora_cuda_fill(dout.ptr, dtype, ldo, m, r, NAN, nullptr) == PLORA_OK, "poison: %s", plora_cuda_last_error());
  CHECK(plora_cuda_shrink(dx.ptr, ldx, da.ptr, lda, dout.ptr, ldo, dtype, m, k, r, 0.5f, p, 99, 3, nullptr) == PLORA_OK,
        "shrink: %s", plora_cuda_last_error());
  CHECK(plora_cuda_dropout_mask(dmask.ptr, dtype, k, m, k, p, 99, 3, nullptr) == PLORA_OK, "mask: %s",
        plora_cuda_last_error());
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "sync");
  compare("shrink", out, dout, dtype, ldo, m, ldo, dtype == PLORA_F32 ? 1e-5 : 1e-2);
  compare("dropout_mask", mask, dmask, dtype, k, m, k, 0.0);
}

void test_copy(int src_dtype, int dst_dtype, std::mt19937_64& rng) {
  const int64_t rows = 33, cols = 17, lds = 20, ldd = 19;
  std::vector<float> s32 = random_floats(rows * lds, rng);
  std::vector<char> src(rows * lds * dtype_size(src_dtype)), dst(rows * ldd * dtype_size(dst_dtype), 0);
  plora_cpu_copy(s32.data(), PLORA_F32, lds, src.data(), src_dtype, lds, rows, lds);
  plora_cpu_copy(src.data(), src_dtype, lds, dst.data(), dst_dtype, ldd, rows, cols);
  Device ds(src.size()), dd(dst.size());
  cudaMemcpy(ds.ptr, src.data(), src.size(), cudaMemcpyHostToDevice);
  cudaMemset(dd.ptr, 0, dst.size());
  CHECK(plora_cuda_copy(ds.ptr, src_dtype, lds, dd.ptr, dst_dtype, ldd, rows, cols, nullptr) == PLORA_OK,
        "copy: %s", plora_cuda_last_error());
  cudaDeviceSynchronize();
  compare("copy", dst, dd, dst_dtype, ldd, rows, ldd, 0.0);
}

}  // namespace

int main() {
  if (!plora_cuda_compiled()) {
    std::printf("SKIP: libplora_cuda is the stub\n");
    return 77;
  }
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count <= 0) {
    std::printf("SKIP: no usable CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 77;
  }
  std::mt19937_64 rng(7);
  for (int dtype : {PLORA_F32, PLORA_BF16, PLORA_F16}) {
    for (int64_t r : {1, 2, 8, 16, 64})
      for (float p : {0.0f, 0.1f, 0.5f}) test_shrink(r == 2 ? 1 : 301, 1027, r, p, dtype, rng);
    for (int dst : {PLORA_F32, PLORA_BF16, PLORA_F16}) test_copy(dtype, dst, rng);
  }
  std::printf("%s (%d failures)\n", g_failures ? "FAILED" : "OK", g_failures);
  return g_failures ? 1 : 0;
}
