// plora_cpu_bench: latency of small host-kernel calls (median and p99 over many calls), the figure
// that decides when a kernel opens an OpenMP region (native/cpu/parallel.h). Each case is timed
// call by call; a ceiling measured in the same run, a memcpy of the case's bytes, puts the figures
// in scale. Run it with OMP_WAIT_POLICY=PASSIVE, the default that libplora_env gives the JVM.
//
//   plora_cpu_bench [calls]          the small calls of docs/kernels.md
//   plora_cpu_bench sweep [calls]    axpby and rmsnorm over sizes around the threshold
//
// Comparing thresholds needs libplora_cpu built with -DPLORA_PARALLEL_WORK=<n>: run this program
// against each build in turn (LD_LIBRARY_PATH), interleaved, so load drift affects both.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "plora/cpu.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Latency {
  double median_us, p99_us;
};

// Per-call latency of `call` over `calls` calls, after a tenth as many unmeasured ones.
Latency measure(const std::function<void()>& call, int calls) {
  for (int i = 0; i < calls / 10 + 1; ++i) call();
  std::vector<double> us(static_cast<size_t>(calls));
  for (double& t : us) {
    const auto start = Clock::now();
    call();
    t = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)]};
}

void check(int status, const char* what) {
  if (status == PLORA_OK) return;
  std::fprintf(stderr, "%s: %s\n", what, plora_cpu_last_error());
  std::exit(1);
}

std::vector<float> random_floats(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// One line: the case, its work (elements or multiply-adds), its latency and the memcpy ceiling of
// the bytes it touches.
void report(const char* name, int64_t work, int64_t bytes, const std::function<void()>& call, int calls) {
  std::vector<char> src(static_cast<size_t>(bytes)), dst(src.size());
  const Latency copy = measure([&] { std::memcpy(dst.data(), src.data(), src.size()); }, calls);
  const Latency l = measure(call, calls);
  std::printf("%-28s work %9lld  median %8.2f us  p99 %8.2f us  memcpy median %6.2f us  ratio %6.1f\n", name,
              static_cast<long long>(work), l.median_us, l.p99_us, copy.median_us,
              l.median_us / std::max(copy.median_us, 1e-3));
}

struct Matrix {
  Matrix(int64_t rows_, int64_t cols_, std::mt19937& rng) : rows(rows_), cols(cols_), v(random_floats(rows_ * cols_, rng)) {}
  int64_t rows, cols;
  std::vector<float> v;
  float* data() { return v.data(); }
  int64_t bytes() const { return rows * cols * 4; }
};

void axpby(int64_t rows, int64_t cols, int calls, std::mt19937& rng) {
  Matrix x(rows, cols, rng), y(rows, cols, rng);
  const std::string name = "axpby " + std::to_string(rows) + "x" + std::to_string(cols);
  report(name.c_str(), rows * cols, 2 * x.bytes(), [&] {
    check(plora_cpu_axpby(0.5f, x.data(), PLORA_F32, cols, 0.5f, y.data(), PLORA_F32, cols, rows, cols), "axpby");
  }, calls);
}

void rmsnorm(int64_t rows, int64_t cols, int calls, std::mt19937& rng) {
  Matrix x(rows, cols, rng), y(rows, cols, rng), w(1, cols, rng);
  std::vector<float> rstd(static_cast<size_t>(rows));
  const std::string name = "rmsnorm " + std::to_string(rows) + "x" + std::to_string(cols);
  report(name.c_str(), rows * cols, 2 * x.bytes(), [&] {
    check(plora_cpu_rmsnorm(x.data(), cols, w.data(), y.data(), cols, rstd.data(), PLORA_F32, rows, cols, 1e-6f),
          "rmsnorm");
  }, calls);
}

void adamw(int64_t rows, int64_t cols, int calls, std::mt19937& rng) {
  Matrix p(rows, cols, rng), g(rows, cols, rng), m(rows, cols, rng), v(rows, cols, rng);
  for (float& e : v.v) e = e * e;
  const int64_t params = (int64_t)p.data(), grads = (int64_t)g.data(), ms = (int64_t)m.data(), vs = (int64_t)v.data();
  const int64_t copies = 0, copy_ld = 0;
  const float scale = 1.0f;
  const std::string name = "adamw " + std::to_string(rows) + "x" + std::to_string(cols);
  report(name.c_str(), rows * cols, 7 * p.bytes(), [&] {
    check(plora_cpu_adamw(1, &params, &grads, &ms, &vs, &copies, &copy_ld, &rows, &cols, &scale, PLORA_F32, 1e-6f, 0.9f,
                          0.999f, 1e-8f, 0.0f, 1.0f, 0.1f, 0.001f),
          "adamw");
  }, calls);
}

void shrink(int64_t m, int64_t k, int64_t r, int calls, std::mt19937& rng) {
  Matrix x(m, k, rng), a(r, k, rng), out(m, r, rng);
  const std::string name = "shrink M=" + std::to_string(m) + " K=" + std::to_string(k) + " r=" + std::to_string(r);
  report(name.c_str(), m * k * r, x.bytes() + a.bytes(), [&] {
    check(plora_cpu_shrink(x.data(), k, a.data(), k, out.data(), r, PLORA_F32, m, k, r, 2.0f, 0.0f, 1, 2), "shrink");
  }, calls);
}

}  // namespace

int main(int argc, char** argv) {
  const bool sweep = argc > 1 && std::strcmp(argv[1], "sweep") == 0;
  const int calls = argc > (sweep ? 2 : 1) ? std::atoi(argv[sweep ? 2 : 1]) : 2000;
  if (calls <= 0) {
    std::fprintf(stderr, "usage: plora_cpu_bench [sweep] [calls > 0]\n");
    return 2;
  }
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  std::printf("threads %d, OMP_WAIT_POLICY %s, %d calls per case\n", plora_cpu_num_threads(), wait ? wait : "(unset)",
              calls);
  std::mt19937 rng(7);
  if (sweep) {
    for (int64_t rows : {16, 64, 128, 256, 512, 1024, 2048, 4096}) axpby(rows, 256, calls, rng);
    for (int64_t rows : {16, 64, 128, 256, 512, 1024, 2048, 4096}) rmsnorm(rows, 256, calls, rng);
    return 0;
  }
  axpby(16, 256, calls, rng);
  axpby(64, 1024, calls, rng);
  rmsnorm(4, 2048, calls, rng);
  rmsnorm(64, 2048, calls, rng);
  adamw(16, 1024, calls, rng);
  adamw(64, 1024, calls, rng);
  shrink(4, 2048, 16, calls, rng);
  shrink(64, 2048, 16, calls, rng);
  return 0;
}
