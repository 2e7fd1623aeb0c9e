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

// A host matrix of rows x ld random values in dtype (padding included), uploaded to dev.
std::vector<char> random_matrix(int dtype, int64_t rows, int64_t ld, std::mt19937_64& rng) {
  std::vector<float> v32 = random_floats(rows * ld, rng);
  std::vector<char> v(rows * ld * dtype_size(dtype));
  plora_cpu_copy(v32.data(), PLORA_F32, ld, v.data(), dtype, ld, rows, ld);
  return v;
}

void upload(const Device& dev, const std::vector<char>& host) {
  cudaMemcpy(dev.ptr, host.data(), host.size(), cudaMemcpyHostToDevice);
}

double tol_for(int dtype) { return dtype == PLORA_F32 ? 1e-5 : 1e-2; }

void test_dy_pass(int64_t m, int64_t n, int64_t r, int dtype, std::mt19937_64& rng) {
  const int64_t ld_dy = n + 3, ld_b = r + 2, ld_ss = r + 1, ld_ds = r + 5, ld_db = r + 3;
  const float scaling = 0.75f;
  std::vector<char> dy = random_matrix(dtype, m, ld_dy, rng), b = random_matrix(dtype, n, ld_b, rng),
                    ss = random_matrix(dtype, m, ld_ss, rng), ds = random_matrix(dtype, m, ld_ds, rng),
                    db = random_matrix(PLORA_F32, n, ld_db, rng);
  plora_cpu_fill(ds.data(), dtype, ld_ds, m, r, NAN);  // overwritten: poison; the padding keeps its values
  Device d_dy(dy.size()), d_b(b.size()), d_ss(ss.size()), d_ds(ds.size()), d_db(db.size());
  upload(d_dy, dy); upload(d_b, b); upload(d_ss, ss); upload(d_ds, ds); upload(d_db, db);

  CHECK(plora_cpu_dy_pass(dy.data(), ld_dy, b.data(), ld_b, ss.data(), ld_ss, ds.data(), ld_ds,
                          reinterpret_cast<float*>(db.data()), ld_db, dtype, m, n, r, scaling) == PLORA_OK,
        "cpu dy_pass: %s", plora_cpu_last_error());
  CHECK(plora_cuda_dy_pass(d_dy.ptr, ld_dy, d_b.ptr, ld_b, d_ss.ptr, ld_ss, d_ds.ptr, ld_ds,
                           static_cast<float*>(d_db.ptr), ld_db, dtype, m, n, r, scaling, nullptr) == PLORA_OK,
        "dy_pass: %s", plora_cuda_last_error());
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "sync");
  char what[64];
  std::snprintf(what, sizeof what, "dy_pass ds (n=%lld r=%lld)", (long long)n, (long long)r);
  compare(what, ds, d_ds, dtype, ld_ds, m, ld_ds, tol_for(dtype));
  std::snprintf(what, sizeof what, "dy_pass db (m=%lld r=%lld dtype=%d)", (long long)m, (long long)r, dtype);
  compare(what, db, d_db, PLORA_F32, ld_db, n, ld_db, 1e-5);
}

void test_da_dx(int64_t m, int64_t k, int64_t r, float p, int dtype, bool with_dx, std::mt19937_64& rng) {
  const int64_t ld_x = k + 3, ld_ds = r + 1, ld_a = k + 1, ld_da = k + 2, ld_dx = k + 5;
  std::vector<char> x = random_matrix(dtype, m, ld_x, rng), ds = random_matrix(dtype, m, ld_ds, rng),
                    a = random_matrix(dtype, r, ld_a, rng), da = random_matrix(PLORA_F32, r, ld_da, rng),
                    dx = random_matrix(dtype, m, ld_dx, rng);
  Device d_x(x.size()), d_ds(ds.size()), d_a(a.size()), d_da(da.size()), d_dx(dx.size());
  upload(d_x, x); upload(d_ds, ds); upload(d_a, a); upload(d_da, da); upload(d_dx, dx);

  CHECK(plora_cpu_da_dx(x.data(), ld_x, ds.data(), ld_ds, a.data(), ld_a, reinterpret_cast<float*>(da.data()),
                        ld_da, with_dx ? dx.data() : nullptr, ld_dx, dtype, m, k, r, p, 99, 3) == PLORA_OK,
        "cpu da_dx: %s", plora_cpu_last_error());
  CHECK(plora_cuda_da_dx(d_x.ptr, ld_x, d_ds.ptr, ld_ds, d_a.ptr, ld_a, static_cast<float*>(d_da.ptr), ld_da,
                         with_dx ? d_dx.ptr : nullptr, ld_dx, dtype, m, k, r, p, 99, 3, nullptr) == PLORA_OK,
        "da_dx: %s", plora_cuda_last_error());
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "sync");
  char what[80];
  std::snprintf(what, sizeof what, "da_dx da (m=%lld p=%g dtype=%d dx=%d)", (long long)m, p, dtype, (int)with_dx);
  compare(what, da, d_da, PLORA_F32, ld_da, r, ld_da, 1e-5);
  std::snprintf(what, sizeof what, "da_dx dx (r=%lld p=%g dx=%d)", (long long)r, p, (int)with_dx);
  compare(what, dx, d_dx, dtype, ld_dx, m, ld_dx, tol_for(dtype));  // unchanged when !with_dx
}

void test_axpby(int x_dtype, int y_dtype, float beta, std::mt19937_64& rng) {
  const int64_t rows = 33, cols = 17, ld_x = 20, ld_y = 19;
  std::vector<char> x = random_matrix(x_dtype, rows, ld_x, rng), y = random_matrix(y_dtype, rows, ld_y, rng);
  if (beta == 0.0f) plora_cpu_fill(y.data(), y_dtype, ld_y, rows, cols, NAN);  // must not be read
  Device d_x(x.size()), d_y(y.size());
  upload(d_x, x); upload(d_y, y);
  CHECK(plora_cpu_axpby(1.5f, x.data(), x_dtype, ld_x, beta, y.data(), y_dtype, ld_y, rows, cols) == PLORA_OK,
        "cpu axpby: %s", plora_cpu_last_error());
  CHECK(plora_cuda_axpby(1.5f, d_x.ptr, x_dtype, ld_x, beta, d_y.ptr, y_dtype, ld_y, rows, cols, nullptr) ==
            PLORA_OK,
        "axpby: %s", plora_cuda_last_error());
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "sync");
  char what[64];
  std::snprintf(what, sizeof what, "axpby (x dtype=%d beta=%g)", x_dtype, beta);
  compare(what, y, d_y, y_dtype, ld_y, rows, ld_y, tol_for(y_dtype));
}

void test_add_bias(int dtype, int bias_dtype, std::mt19937_64& rng) {
  const int64_t rows = 31, cols = 45, ld = 47;
  std::vector<char> y = random_matrix(dtype, rows, ld, rng), bias = random_matrix(bias_dtype, 1, cols, rng);
  Device d_y(y.size()), d_bias(bias.size());
  upload(d_y, y); upload(d_bias, bias);
  CHECK(plora_cpu_add_bias(y.data(), dtype, ld, rows, cols, bias.data(), bias_dtype) == PLORA_OK,
        "cpu add_bias: %s", plora_cpu_last_error());
  CHECK(plora_cuda_add_bias(d_y.ptr, dtype, ld, rows, cols, d_bias.ptr, bias_dtype, nullptr) == PLORA_OK,
        "add_bias: %s", plora_cuda_last_error());
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "sync");
  char what[64];
  std::snprintf(what, sizeof what, "add_bias (bias dtype=%d)", bias_dtype);
  compare(what, y, d_y, dtype, ld, rows, ld, tol_for(dtype));
}

void test_random_fill(int dtype, int distribution, std::mt19937_64& rng) {
  const int64_t rows = 37, cols = 29, ld = 31;
  const float a = distribution == PLORA_UNIFORM ? -0.5f : 0.25f, b = distribution == PLORA_UNIFORM ? 2.0f : 1.5f;
  std::vector<char> out = random_matrix(dtype, rows, ld, rng);
  plora_cpu_fill(out.data(), dtype, ld, rows, cols, NAN);
  Device d_out(out.size());
  upload(d_out, out);
  CHECK(plora_cpu_random_fill(out.data(), dtype, ld, rows, cols, distribution, a, b, 1234, 5) == PLORA_OK,
        "cpu random_fill: %s", plora_cpu_last_error());
  CHECK(plora_cuda_random_fill(d_out.ptr, dtype, ld, rows, cols, distribution, a, b, 1234, 5, nullptr) ==
            PLORA_OK,
        "random_fill: %s", plora_cuda_last_error());
  CHECK(plora_cuda_random_fill(d_out.ptr, dtype, ld, rows, cols, 7, a, b, 1234, 5, nullptr) == PLORA_ERR_INVALID,
        "random_fill accepted distribution 7");
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "sync");
  // normal: host and device libm (logf, cosf) may differ in the last bit
  const double tol = dtype != PLORA_F32 ? 1e-2 : distribution == PLORA_UNIFORM ? 1e-6 : 1e-5;
  compare(distribution == PLORA_UNIFORM ? "random_fill uniform" : "random_fill normal", out, d_out, dtype, ld,
          rows, ld, tol);
}

void test_count_nonfinite(int dtype, std::mt19937_64& rng) {
  const int64_t rows = 300, cols = 257, ld = 260;
  std::vector<char> x = random_matrix(dtype, rows, ld, rng);
  // 7 non-finite elements inside the matrix, 2 in the padding that must not be counted
  const int64_t inside[] = {0, 1, 5 * ld + 17, 123 * ld + 256, 200 * ld, 299 * ld + 100, 299 * ld + 256};
  const float values[] = {NAN, INFINITY, -INFINITY};
  for (size_t q = 0; q < sizeof inside / sizeof inside[0]; ++q) store_f32(x.data(), dtype, inside[q], values[q % 3]);
  store_f32(x.data(), dtype, 7 * ld + 257, NAN);
  store_f32(x.data(), dtype, 299 * ld + 259, INFINITY);
  Device d_x(x.size()), counter(8);
  upload(d_x, x);
  cudaMemset(counter.ptr, 0xff, 8);  // the call must reset it
  int64_t cpu = -1, gpu = -1;
  CHECK(plora_cpu_count_nonfinite(x.data(), dtype, ld, rows, cols, &cpu) == PLORA_OK, "cpu count_nonfinite: %s",
        plora_cpu_last_error());
  CHECK(plora_cuda_count_nonfinite(d_x.ptr, dtype, ld, rows, cols, counter.ptr, &gpu, nullptr) == PLORA_OK,
        "count_nonfinite: %s", plora_cuda_last_error());
  CHECK(cpu == 7 && gpu == 7, "count_nonfinite dtype=%d: cpu %lld, cuda %lld, expected 7", dtype, (long long)cpu,
        (long long)gpu);
  CHECK(plora_cuda_count_nonfinite(d_x.ptr, dtype, ld, 0, cols, counter.ptr, &gpu, nullptr) == PLORA_OK && gpu == 0,
        "count_nonfinite of an empty matrix: %lld", (long long)gpu);
  CHECK(plora_cuda_count_nonfinite(d_x.ptr, dtype, ld, rows, cols, counter.ptr, nullptr, nullptr) ==
            PLORA_ERR_INVALID,
        "count_nonfinite accepted a null count");
  CHECK(plora_cuda_count_nonfinite(d_x.ptr, dtype, ld, rows, cols, nullptr, &gpu, nullptr) == PLORA_ERR_INVALID,
        "count_nonfinite accepted a null device counter");
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
    for (int64_t r : {1, 2, 8, 16, 17, 64}) {
      test_dy_pass(301, 1027, r, dtype, rng);
      test_dy_pass(1, 1027, r, dtype, rng);
      test_dy_pass(130, 5, r, dtype, rng);
      for (float p : {0.0f, 0.1f}) {
        test_da_dx(301, 1027, r, p, dtype, true, rng);
        test_da_dx(1, 1027, r, p, dtype, true, rng);
        test_da_dx(130, 5, r, p, dtype, true, rng);
      }
    }
    test_da_dx(301, 1027, 8, 0.1f, dtype, false, rng);
    for (int other : {PLORA_F32, PLORA_BF16, PLORA_F16}) {
      for (float beta : {0.0f, 0.5f}) test_axpby(other, dtype, beta, rng);
      test_add_bias(dtype, other, rng);
    }
    for (int distribution : {PLORA_UNIFORM, PLORA_NORMAL}) test_random_fill(dtype, distribution, rng);
    test_count_nonfinite(dtype, rng);
  }
  std::printf("%s (%d failures)\n", g_failures ? "FAILED" : "OK", g_failures);
  return g_failures ? 1 : 0;
}
