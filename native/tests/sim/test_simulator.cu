// The CUDA simulator's own test: kernels with planted bugs (a missing barrier, a wrong shuffle
// offset, an off-by-one bound, a racy shared write, a plain += where blocks need an atomic, ...)
// must each be reported with kernel, block and thread, and each one's fixed twin must not be;
// the launch limits must be refused; the builtins, collectives, streams and copies must behave
// as CUDA's. Compiled through translate.cmake like the project's kernels.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../check.h"
#include "mma.cuh"
#include "plora/numerics.h"
#include "sim.h"

namespace {

// ---- kernels ----

// A block sum through shared memory; without the barrier, thread 0 reads what the others write.
__global__ void shared_sum_kernel(const float* x, float* out, bool barrier) {
  __shared__ float partial[64];
  partial[threadIdx.x] = x[threadIdx.x];
  if (barrier) __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int i = 0; i < 64; ++i) s += partial[i];
    *out = s;
  }
}

// A half-warp sum over a 16-lane mask: offsets 8, 4, 2, 1 within segments of 16 lanes. Starting
// at 16 over the whole warp reads lanes outside the mask.
__global__ void half_warp_sum_kernel(const float* x, float* out, int first_offset, int width) {
  float v = x[threadIdx.x];
  if (threadIdx.x < 16) {
    for (int offset = first_offset; offset > 0; offset /= 2) v += __shfl_down_sync(0x0000ffffu, v, offset, width);
    if (threadIdx.x == 0) *out = v;
  }
}

// y = 2x over n elements; `last` is n (right) or n + 1 (off by one).
__global__ void twice_kernel(const float* x, float* y, int last) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < last) y[i] = 2.0f * x[i];
}

// Every thread counts itself into one shared counter: plainly (a race) or atomically.
__global__ void shared_count_kernel(int* out, bool atomic) {
  __shared__ int count;
  if (threadIdx.x == 0) count = 0;
  __syncthreads();
  if (atomic) atomicAdd(&count, 1);
  else count += 1;
  __syncthreads();
  if (threadIdx.x == 0) *out = count;
}

// Each block adds its element to one total: with a plain += (a race between blocks) or an atomic.
__global__ void block_total_kernel(const float* x, float* total, bool atomic) {
  if (threadIdx.x != 0) return;
  if (atomic) atomicAdd(total, x[blockIdx.x]);
  else *total += x[blockIdx.x];
}

// A barrier that only the first warp reaches (the others return), or that the two warps reach
// at different places.
__global__ void partial_barrier_kernel(int* out, int mode) {
  if (mode == 0) {
    if (threadIdx.x >= 32) return;
    __syncthreads();
  } else if (threadIdx.x < 32) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

// A full-warp shuffle that only the lower half of the warp reaches.
__global__ void partial_shuffle_kernel(const float* x, float* out) {
  float v = x[threadIdx.x];
  if (threadIdx.x < 16) v += __shfl_down_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

// Reads x, which may hold nothing anyone wrote.
__global__ void copy_kernel(const float* x, float* y, int n) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) y[i] = x[i];
}

// Thread 0 updates *p atomically, thread 1 reads it plainly.
__global__ void mixed_atomic_kernel(int* p, int* seen) {
  if (threadIdx.x == 0) atomicAdd(p, 1);
  if (threadIdx.x == 1) *seen = *p;
}

// More static shared memory than a block may have (52 KB).
__global__ void big_shared_kernel(float* out) {
  __shared__ float big[13000];
  big[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = big[(threadIdx.x + 1) % blockDim.x];
}

// Each thread writes its coordinates: x, y, z of threadIdx, blockIdx, blockDim, gridDim.
__global__ void coordinates_kernel(unsigned* out) {
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned thread = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  unsigned* o = out + 12 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
  const unsigned v[12] = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z,
                          blockDim.x,  blockDim.y,  blockDim.z,  gridDim.x,  gridDim.y,  gridDim.z};
  for (int q = 0; q < 12; ++q) o[q] = v[q];
}

// The warp collectives of one warp: out[lane * 6 + q].
// One 16-byte and one 8-byte access per thread: the wide loads and stores of the LoRA kernels.
__global__ void wide_copy_kernel(const uint4* x, uint4* y, const uint2* x2, uint2* y2, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    y[i] = x[i];
    y2[i] = x2[i];
  }
}

__global__ void collectives_kernel(const int* x, int* out) {
  const int lane = threadIdx.x;
  int sum = x[lane];
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  int butterfly = x[lane];
  for (int mask = 1; mask < 32; mask *= 2) butterfly += __shfl_xor_sync(0xffffffffu, butterfly, mask);
  out[lane * 6 + 0] = sum;
  out[lane * 6 + 1] = butterfly;
  out[lane * 6 + 2] = __shfl_up_sync(0xffffffffu, x[lane], 3, 16);
  out[lane * 6 + 3] = __shfl_sync(0xffffffffu, x[lane], 5);
  out[lane * 6 + 4] = static_cast<int>(__ballot_sync(0xffffffffu, x[lane] % 3 == 0));
  out[lane * 6 + 5] = __any_sync(0xffffffffu, x[lane] == 7) + 2 * __all_sync(0xffffffffu, x[lane] >= 0);
}

// One tensor-core mma per warp: thread t brings its fragments a[4t..], b[2t..], c[4t..] and stores
// its D at d[4t..], accumulating in place (D in C's registers) or not, with bf16 or (f16) IEEE half
// elements. Lane `missing` of every warp returns first: a planted bug.
__global__ void mma_kernel(const uint32_t* a, const uint32_t* b, const float* c, float* d, int missing, bool in_place,
                           bool f16) {
  const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
  if (static_cast<int>(threadIdx.x % 32) == missing) return;
  uint32_t fa[4], fb[2];
  float fc[4], fd[4];
  for (int i = 0; i < 4; ++i) fa[i] = a[t * 4 + i];
  for (int i = 0; i < 2; ++i) fb[i] = b[t * 2 + i];
  for (int i = 0; i < 4; ++i) fc[i] = c[t * 4 + i];
  if (f16) {
    plora::mma_m16n8k16<true>(fd, fa, fb, fc);
  } else if (in_place) {
    plora::mma_m16n8k16<false>(fc, fa, fb, fc);
    for (int i = 0; i < 4; ++i) fd[i] = fc[i];
  } else {
    plora::mma_m16n8k16<false>(fd, fa, fb, fc);
  }
  for (int i = 0; i < 4; ++i) d[t * 4 + i] = fd[i];
}

// One movmatrix per warp: thread t transposes its word in[t] into out[t]. Lane `missing` of every
// warp returns first: a planted bug.
__global__ void movmatrix_kernel(const uint32_t* in, uint32_t* out, int missing) {
  const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
  if (static_cast<int>(threadIdx.x % 32) == missing) return;
  out[t] = plora::movmatrix_m8n8_trans_b16(in[t]);
}

// Host code that dereferences a device pointer.
int read_on_host(const int* device) { return *device; }

// ---- checks ----

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// The findings since the last call must include one of `check` in `kernel` whose message names
// `part`; when `block` / `thread` are given, at those coordinates.
void expect_finding(const char* what, sim::Check check, const char* kernel, const char* part, const uint3* block = nullptr,
                    const uint3* thread = nullptr) {
  const std::vector<sim::Finding> findings = sim::take_findings();
  bool found = false;
  for (const sim::Finding& f : findings) {
    if (f.check != check || f.kernel != kernel || !contains(f.message, part)) continue;
    if (block != nullptr && (f.block.x != block->x || f.block.y != block->y || f.block.z != block->z)) continue;
    if (thread != nullptr && (f.thread.x != thread->x || f.thread.y != thread->y || f.thread.z != thread->z)) continue;
    found = true;
  }
  CHECK(found, "%s: no %s finding in %s naming \"%s\" (%zu findings%s%s)", what, sim::check_name(check), kernel, part,
        findings.size(), findings.empty() ? "" : ", the first: ", findings.empty() ? "" : findings[0].message.c_str());
}

void expect_no_finding(const char* what) {
  const std::vector<sim::Finding> findings = sim::take_findings();
  CHECK(findings.empty(), "%s: %zu findings, the first: %s", what, findings.size(),
        findings.empty() ? "" : findings[0].message.c_str());
}

// Exactly one finding: a warp collective `op` in `kernel` that lane `lane` left by exiting.
void expect_exited_lane(const char* what, const char* kernel, const char* op, int lane) {
  const std::vector<sim::Finding> findings = sim::take_findings();
  const std::string waits = std::string("waits in ") + op + " at test_simulator.cu:";
  const std::string never = "names lanes that never reach it: lane " + std::to_string(lane) + " (exited)";
  CHECK(findings.size() == 1 && findings[0].check == sim::Check::shuffle && findings[0].kernel == kernel &&
            contains(findings[0].message, waits.c_str()) && contains(findings[0].message, never.c_str()),
        "%s: %zu findings, the first: %s", what, findings.size(), findings.empty() ? "" : findings[0].message.c_str());
}

struct Buffer {
  void* ptr = nullptr;
  explicit Buffer(size_t bytes) { cudaMalloc(&ptr, bytes); }
  ~Buffer() { cudaFree(ptr); }
  template <class T>
  T* as() const { return static_cast<T*>(ptr); }
};

template <class T>
void upload(const Buffer& b, const std::vector<T>& v) {
  cudaMemcpy(b.ptr, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
}

template <class T>
std::vector<T> download(const Buffer& b, size_t n) {
  std::vector<T> v(n);
  cudaMemcpy(v.data(), b.ptr, n * sizeof(T), cudaMemcpyDeviceToHost);
  return v;
}

const uint3 kFirst{0, 0, 0};

void planted_missing_barrier() {
  Buffer x(64 * 4), out(4);
  upload(x, std::vector<float>(64, 1.0f));
  shared_sum_kernel<<<1, 64>>>(x.as<float>(), out.as<float>(), false);
  cudaDeviceSynchronize();
  // thread 0 reads partial[i] before thread i writes it (in order), or after (shuffled): a race either way
  expect_finding("missing barrier", sim::Check::race, "shared_sum_kernel", "shared partial + ");
  shared_sum_kernel<<<1, 64>>>(x.as<float>(), out.as<float>(), true);
  cudaDeviceSynchronize();
  expect_no_finding("the barrier in place");
  CHECK(download<float>(out, 1)[0] == 64.0f, "shared_sum_kernel with its barrier: %g", download<float>(out, 1)[0]);
}

void planted_wrong_shuffle_offset() {
  Buffer x(32 * 4), out(4);
  upload(x, std::vector<float>(32, 1.0f));
  half_warp_sum_kernel<<<1, 32>>>(x.as<float>(), out.as<float>(), 16, 32);
  cudaDeviceSynchronize();
  expect_finding("wrong shuffle offset", sim::Check::shuffle, "half_warp_sum_kernel",
                 "(lane 0) reads lane 16, which is not in the mask 0xffff", &kFirst, &kFirst);
  half_warp_sum_kernel<<<1, 32>>>(x.as<float>(), out.as<float>(), 8, 16);
  cudaDeviceSynchronize();
  expect_no_finding("the right shuffle offset");
  CHECK(download<float>(out, 1)[0] == 16.0f, "half-warp sum: %g", download<float>(out, 1)[0]);
}

void planted_off_by_one() {
  const int n = 100;
  Buffer x(n * 4), y(n * 4);
  upload(x, std::vector<float>(n, 1.5f));
  twice_kernel<<<1, 128>>>(x.as<float>(), y.as<float>(), n + 1);
  cudaDeviceSynchronize();
  const uint3 thread{100, 0, 0};
  expect_finding("off-by-one bound", sim::Check::out_of_bounds, "twice_kernel", "0 bytes past the end of allocation",
                 &kFirst, &thread);
  twice_kernel<<<1, 128>>>(x.as<float>(), y.as<float>(), n);
  cudaDeviceSynchronize();
  expect_no_finding("the right bound");
}

void planted_racy_shared_write() {
  Buffer out(4);
  shared_count_kernel<<<1, 64>>>(out.as<int>(), false);
  cudaDeviceSynchronize();
  expect_finding("racy shared write", sim::Check::race, "shared_count_kernel", "shared count + 0, written by thread");
  shared_count_kernel<<<1, 64>>>(out.as<int>(), true);
  cudaDeviceSynchronize();
  expect_no_finding("an atomic shared count");
  CHECK(download<int>(out, 1)[0] == 64, "shared count: %d", download<int>(out, 1)[0]);
}

void planted_plain_add_across_blocks() {
  Buffer x(8 * 4), total(4);
  upload(x, std::vector<float>(8, 0.5f));
  cudaMemset(total.ptr, 0, 4);
  block_total_kernel<<<8, 32>>>(x.as<float>(), total.as<float>(), false);
  cudaDeviceSynchronize();
  expect_finding("plain += across blocks", sim::Check::race, "block_total_kernel", "(another block of the launch)",
                 nullptr, &kFirst);
  cudaMemset(total.ptr, 0, 4);
  block_total_kernel<<<8, 32>>>(x.as<float>(), total.as<float>(), true);
  cudaDeviceSynchronize();
  expect_no_finding("an atomic total");
  CHECK(download<float>(total, 1)[0] == 4.0f, "block total: %g", download<float>(total, 1)[0]);
}

void planted_partial_barrier() {
  Buffer out(64 * 4);
  partial_barrier_kernel<<<1, 64>>>(out.as<int>(), 0);
  cudaDeviceSynchronize();
  expect_finding("barrier after an early return", sim::Check::barrier, "partial_barrier_kernel",
                 "is reached by 32 of the block's 64 threads");
  partial_barrier_kernel<<<1, 64>>>(out.as<int>(), 1);
  cudaDeviceSynchronize();
  expect_finding("barriers at two places", sim::Check::barrier, "partial_barrier_kernel", "while thread (0,0,0) waits at");
}

void planted_partial_shuffle() {
  Buffer x(32 * 4), out(32 * 4);
  upload(x, std::vector<float>(32, 1.0f));
  partial_shuffle_kernel<<<1, 32>>>(x.as<float>(), out.as<float>());
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure, "a deadlocked block is not a launch failure");
  expect_finding("shuffle reached by half the warp", sim::Check::shuffle, "partial_shuffle_kernel",
                 "names lanes that never reach it: lane 16 (exited)");
}

void planted_uninitialized_read() {
  Buffer x(40 * 4), y(40 * 4);
  copy_kernel<<<1, 32>>>(x.as<float>(), y.as<float>(), 40);
  cudaDeviceSynchronize();
  expect_finding("read of unwritten memory", sim::Check::uninitialized, "copy_kernel", "which nothing wrote", &kFirst, &kFirst);
  cudaMemset(x.ptr, 0, 40 * 4);
  copy_kernel<<<1, 32>>>(x.as<float>(), y.as<float>(), 40);
  cudaDeviceSynchronize();
  expect_no_finding("a read of memset memory");
}

void planted_atomic_against_plain() {
  Buffer p(4), seen(4);
  cudaMemset(p.ptr, 0, 4);
  mixed_atomic_kernel<<<1, 32>>>(p.as<int>(), seen.as<int>());
  cudaDeviceSynchronize();
  // reported at the plain read (in order) or at the atomic (shuffled)
  expect_finding("plain read of an atomic", sim::Check::atomic_race, "mixed_atomic_kernel", "allocation #");
}

void planted_host_access() {
  Buffer p(4);
  cudaMemset(p.ptr, 0, 4);
  CHECK(read_on_host(p.as<int>()) == 0, "host read");
  const std::vector<sim::Finding> findings = sim::take_findings();
  CHECK(findings.size() == 1 && findings[0].check == sim::Check::host_access,
        "host dereference of device memory: %zu findings", findings.size());
}

// mma.sync m16n8k16 (bf16 or f16 in, fp32 accumulate): random matrices of every warp, packed into lanes'
// fragments by the inverse of the PTX ISA's layout (element -> lane and register), against the
// float64 product; a lane missing and a warp of 16 lanes must be reported.
void mma_against_float64(bool f16) {
  std::mt19937_64 rng(16816);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> scale(-6, 6);
  const int warps = 6, threads = warps * 32;  // 3 blocks of 2 warps
  auto element = [&] {  // of A or B: bf16, or IEEE half when f16
    const float v = std::ldexp(u(rng), scale(rng));
    return f16 ? plora::f32_to_f16(v) : plora::f32_to_bf16(v);
  };
  auto value = [&](uint16_t bits) { return f16 ? plora::f16_to_f32(bits) : plora::bf16_to_f32(bits); };
  std::vector<uint16_t> a(warps * 16 * 16), b(warps * 16 * 8);
  std::vector<float> c(warps * 16 * 8);
  for (auto& v : a) v = element();
  for (auto& v : b) v = element();
  for (auto& v : c) v = std::ldexp(u(rng), scale(rng));
  std::vector<uint32_t> fa(threads * 4, 0), fb(threads * 2, 0);
  std::vector<float> fc(threads * 4);
  for (int w = 0; w < warps; ++w) {
    for (int r = 0; r < 16; ++r)  // A, row-major: a0..a7 of lane 4 (r % 8) + (k % 8) / 2
      for (int k = 0; k < 16; ++k)
        fa[(w * 32 + 4 * (r % 8) + (k % 8) / 2) * 4 + (r >= 8) + 2 * (k >= 8)] |=
            static_cast<uint32_t>(a[(w * 16 + r) * 16 + k]) << (16 * (k % 2));
    for (int k = 0; k < 16; ++k)  // B, col-major: b0..b3 of lane 4 n + (k % 8) / 2
      for (int n = 0; n < 8; ++n)
        fb[(w * 32 + 4 * n + (k % 8) / 2) * 2 + (k >= 8)] |= static_cast<uint32_t>(b[(w * 16 + k) * 8 + n])
                                                              << (16 * (k % 2));
    for (int r = 0; r < 16; ++r)  // C: c0..c3 of lane 4 (r % 8) + n / 2
      for (int n = 0; n < 8; ++n) fc[(w * 32 + 4 * (r % 8) + n / 2) * 4 + 2 * (r >= 8) + n % 2] = c[(w * 16 + r) * 8 + n];
  }
  Buffer da(fa.size() * 4), db(fb.size() * 4), dc(fc.size() * 4), dd(threads * 4 * 4);
  upload(da, fa);
  upload(db, fb);
  upload(dc, fc);
  for (const bool in_place : {false, true}) {
    if (f16 && in_place) continue;  // the in-place form is the bf16 call's
    cudaMemset(dd.ptr, 0xff, threads * 4 * 4);  // NaN
    mma_kernel<<<3, 64>>>(da.as<uint32_t>(), db.as<uint32_t>(), dc.as<float>(), dd.as<float>(), -1, in_place, f16);
    CHECK(cudaDeviceSynchronize() == cudaSuccess, "mma_kernel failed");
    expect_no_finding("a whole warp in mma.sync");
    const std::vector<float> d = download<float>(dd, threads * 4);
    int wrong = 0;
    double worst = 0.0;
    for (int w = 0; w < warps; ++w)
      for (int r = 0; r < 16; ++r)
        for (int n = 0; n < 8; ++n) {
          double ref = c[(w * 16 + r) * 8 + n], magnitude = std::fabs(ref);
          for (int k = 0; k < 16; ++k) {
            const double p = static_cast<double>(value(a[(w * 16 + r) * 16 + k])) * value(b[(w * 16 + k) * 8 + n]);
            ref += p;
            magnitude += std::fabs(p);
          }
          const float got = d[(w * 32 + 4 * (r % 8) + n / 2) * 4 + 2 * (r >= 8) + n % 2];
          // one fp32 rounding of the sum: within 2^-24 of it, and of the terms when they cancel
          const double error = std::fabs(got - ref), bound = std::ldexp(std::fabs(ref), -24) + std::ldexp(magnitude, -40);
          if (!(error <= bound)) ++wrong;
          worst = std::max(worst, error / magnitude);
        }
    CHECK(wrong == 0, "mma.sync (%s, in place %d): %d of %d elements of D off the float64 product (worst %.3g of |terms|)",
          f16 ? "f16" : "bf16", in_place, wrong, warps * 128, worst);
  }
  if (f16) return;  // the divergence checks below are the instruction's, whatever its element type
  mma_kernel<<<1, 32>>>(da.as<uint32_t>(), db.as<uint32_t>(), dc.as<float>(), dd.as<float>(), 5, false, false);
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure, "an mma.sync without lane 5 is not a launch failure");
  expect_exited_lane("mma.sync without lane 5", "mma_kernel", "mma.sync.aligned.m16n8k16", 5);
  cudaMemset(dd.ptr, 0, threads * 4 * 4);
  mma_kernel<<<1, 48>>>(da.as<uint32_t>(), db.as<uint32_t>(), dc.as<float>(), dd.as<float>(), -1, false, false);
  cudaDeviceSynchronize();
  expect_finding("mma.sync in a warp of 16 lanes", sim::Check::shuffle, "mma_kernel",
                 "which names lanes the block does not have (16 in this warp)");
  CHECK(std::isnan(download<float>(dd, 48 * 4)[32 * 4]), "mma.sync in a warp of 16 lanes gave a number");
}

// movmatrix.sync m8n8 .trans: a distinct 16-bit value per element of every warp's matrix, packed by
// the ISA's layout (element (row, col) in lane 4 row + col / 2, half col % 2), must come back as the
// transpose in the same layout; a lane missing must be reported.
void movmatrix_transposes() {
  const int warps = 4, threads = warps * 32;  // 2 blocks of 2 warps
  auto element = [](int w, int row, int col) { return static_cast<uint32_t>(0x1000 * w + 0x100 * row + col + 1); };
  std::vector<uint32_t> in(threads, 0);
  for (int w = 0; w < warps; ++w)
    for (int row = 0; row < 8; ++row)
      for (int col = 0; col < 8; ++col) in[w * 32 + 4 * row + col / 2] |= element(w, row, col) << (16 * (col % 2));
  Buffer din(threads * 4), dout(threads * 4);
  upload(din, in);
  movmatrix_kernel<<<2, 64>>>(din.as<uint32_t>(), dout.as<uint32_t>(), -1);
  CHECK(cudaDeviceSynchronize() == cudaSuccess, "movmatrix_kernel failed");
  expect_no_finding("a whole warp in movmatrix");
  const std::vector<uint32_t> out = download<uint32_t>(dout, threads);
  int wrong = 0;
  for (int w = 0; w < warps; ++w)
    for (int row = 0; row < 8; ++row)
      for (int col = 0; col < 8; ++col) {
        const uint32_t got = (out[w * 32 + 4 * row + col / 2] >> (16 * (col % 2))) & 0xffffu;
        if (got != element(w, col, row)) ++wrong;
      }
  CHECK(wrong == 0, "movmatrix: %d of %d elements are not the transpose's", wrong, warps * 64);
  movmatrix_kernel<<<1, 32>>>(din.as<uint32_t>(), dout.as<uint32_t>(), 9);
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure, "a movmatrix without lane 9 is not a launch failure");
  expect_exited_lane("movmatrix without lane 9", "movmatrix_kernel", "movmatrix.sync.aligned.m8n8.trans", 9);
}

void launch_limits() {
  Buffer out(1024 * 4);
  cudaGetLastError();
  twice_kernel<<<1, 1025>>>(out.as<float>(), out.as<float>(), 0);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "a block of 1025 threads was accepted");
  twice_kernel<<<1, dim3(32, 32, 2)>>>(out.as<float>(), out.as<float>(), 0);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "a block of 2048 threads was accepted");
  twice_kernel<<<1, dim3(1, 1, 65)>>>(out.as<float>(), out.as<float>(), 0);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "a block 65 deep was accepted");
  twice_kernel<<<dim3(1, 65536), 32>>>(out.as<float>(), out.as<float>(), 0);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "a grid 65536 high was accepted");
  twice_kernel<<<0, 32>>>(out.as<float>(), out.as<float>(), 0);
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "an empty grid was accepted");
  twice_kernel<<<1, 32, 48 * 1024 + 1>>>(out.as<float>(), out.as<float>(), 0);
  CHECK(cudaGetLastError() == cudaErrorInvalidValue, "48 KiB + 1 of dynamic shared memory was accepted");
  twice_kernel<<<1, 32, 0, reinterpret_cast<cudaStream_t>(&out)>>>(out.as<float>(), out.as<float>(), 0);
  CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle, "a launch on a stream that is none was accepted");
  twice_kernel<<<1, 1024>>>(out.as<float>(), out.as<float>(), 0);
  CHECK(cudaGetLastError() == cudaSuccess, "a block of 1024 threads was refused");
  big_shared_kernel<<<1, 32>>>(out.as<float>());
  CHECK(cudaDeviceSynchronize() == cudaErrorLaunchFailure, "a block with 52 KB of shared memory ran");
  expect_finding("too much shared memory", sim::Check::shared_memory, "big_shared_kernel", "a block has at most 48 KiB");
}

void builtins_and_collectives() {
  const dim3 grid(3, 2, 2), block(4, 3, 2);
  const size_t threads = 3 * 2 * 2 * 4 * 3 * 2;
  Buffer coords(threads * 12 * 4);
  coordinates_kernel<<<grid, block>>>(coords.as<unsigned>());
  const std::vector<unsigned> c = download<unsigned>(coords, threads * 12);
  size_t wrong = 0, e = 0;
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 2; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 4; ++tx, e += 12) {
              const unsigned want[12] = {tx, ty, tz, bx, by, bz, 4, 3, 2, 3, 2, 2};
              wrong += std::memcmp(&c[e], want, sizeof want) != 0;
            }
  CHECK(wrong == 0, "threadIdx/blockIdx/blockDim/gridDim wrong in %zu of %zu threads", wrong, threads);

  std::vector<int> x(32);
  for (int i = 0; i < 32; ++i) x[i] = (i * 7 + 3) % 11;
  Buffer dx(32 * 4), out(32 * 6 * 4);
  upload(dx, x);
  collectives_kernel<<<1, 32>>>(dx.as<int>(), out.as<int>());
  const std::vector<int> o = download<int>(out, 32 * 6);
  int total = 0, any7 = 0;
  unsigned ballot = 0;
  for (int i = 0; i < 32; ++i) {
    total += x[i];
    any7 |= x[i] == 7;
    if (x[i] % 3 == 0) ballot |= 1u << i;
  }
  size_t bad = 0;
  for (int l = 0; l < 32; ++l) {
    const int up = (l % 16) >= 3 ? x[l - 3] : x[l];
    bad += (l == 0 && o[0] != total) + (o[l * 6 + 1] != total) + (o[l * 6 + 2] != up) + (o[l * 6 + 3] != x[5]) +
           (static_cast<unsigned>(o[l * 6 + 4]) != ballot) + (o[l * 6 + 5] != any7 + 2);
  }
  CHECK(bad == 0, "warp collectives: %zu wrong results (lane 0 sum %d, want %d)", bad, o[0], total);
  expect_no_finding("coordinates and collectives");
}

void streams_and_copies() {
  Buffer d(6 * 8 * 4);
  std::vector<float> h(6 * 8);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<float>(i);
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s) == cudaSuccess, "stream");
  cudaMemcpyAsync(d.ptr, h.data(), h.size() * 4, cudaMemcpyHostToDevice, s);
  std::fill(h.begin(), h.end(), -1.0f);  // a copy from pageable memory has taken its bytes already
  float back = 123.0f;
  cudaMemcpyAsync(&back, d.as<float>() + 9, 4, cudaMemcpyDeviceToHost, s);
  cudaEvent_t done;
  cudaEventCreate(&done);
  cudaEventRecord(done, s);
  CHECK(back == 123.0f && cudaEventQuery(done) == cudaErrorNotReady, "the stream ran before the host waited");
  CHECK(cudaEventSynchronize(done) == cudaSuccess && back == 9.0f, "after the event: %g", back);
  // a 3 x 4 block of the 6 x 8 matrix, rows 2.., columns 3..
  std::vector<float> block(3 * 4, 0.0f);
  CHECK(cudaMemcpy2DAsync(block.data(), 4 * 4, d.as<float>() + 2 * 8 + 3, 8 * 4, 4 * 4, 3, cudaMemcpyDeviceToHost, s) ==
            cudaSuccess,
        "2-D copy");
  cudaStreamSynchronize(s);
  size_t wrong = 0;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) wrong += block[i * 4 + j] != static_cast<float>((i + 2) * 8 + j + 3);
  CHECK(wrong == 0, "2-D copy: %zu wrong elements", wrong);
  CHECK(cudaMemcpy2D(block.data(), 2 * 4, d.ptr, 8 * 4, 4 * 4, 3, cudaMemcpyDeviceToHost) == cudaErrorInvalidPitchValue,
        "a 2-D copy wider than its pitch was accepted");
  CHECK(cudaMemcpy(block.data(), d.as<float>() + 40, 9 * 4, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
        "a copy past the end of an allocation was accepted");
  expect_finding("copy past an allocation", sim::Check::out_of_bounds, "", "cudaMemcpy source of 36 bytes");
  cudaEventDestroy(done);
  cudaStreamDestroy(s);
  expect_no_finding("streams and copies");
}

// uint2 / uint4 accesses are one access of their width each, checked like any other; memory of
// cudaMallocAsync serves the work queued after it, and cudaFreeAsync frees it in stream order.
void wide_accesses_and_stream_ordered_memory() {
  static_assert(sizeof(uint4) == 16 && alignof(uint4) == 16 && sizeof(uint2) == 8 && alignof(uint2) == 8,
                "CUDA's vector types");
  const int n = 40;
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s) == cudaSuccess, "stream");
  std::vector<unsigned> host(4 * n), back(4 * n, 0), back2(2 * n, 0);
  for (int i = 0; i < 4 * n; ++i) host[i] = 0x9e3779b9u * (i + 1);
  void *x = nullptr, *y = nullptr, *x2 = nullptr, *y2 = nullptr;
  CHECK(cudaMallocAsync(&x, n * 16, s) == cudaSuccess && cudaMallocAsync(&y, n * 16, s) == cudaSuccess &&
            cudaMallocAsync(&x2, n * 8, s) == cudaSuccess && cudaMallocAsync(&y2, n * 8, s) == cudaSuccess,
        "cudaMallocAsync");
  cudaMemcpyAsync(x, host.data(), n * 16, cudaMemcpyHostToDevice, s);
  cudaMemcpyAsync(x2, host.data(), n * 8, cudaMemcpyHostToDevice, s);
  wide_copy_kernel<<<2, 32, 0, s>>>(static_cast<uint4*>(x), static_cast<uint4*>(y), static_cast<uint2*>(x2),
                                    static_cast<uint2*>(y2), n);
  cudaMemcpyAsync(back.data(), y, n * 16, cudaMemcpyDeviceToHost, s);
  cudaMemcpyAsync(back2.data(), y2, n * 8, cudaMemcpyDeviceToHost, s);
  for (void* p : {x, y, x2, y2}) CHECK(cudaFreeAsync(p, s) == cudaSuccess, "cudaFreeAsync");
  CHECK(cudaStreamSynchronize(s) == cudaSuccess, "the stream with its frees");
  CHECK(back == host, "uint4 copy: wrong words");
  CHECK(std::equal(back2.begin(), back2.end(), host.begin()), "uint2 copy: wrong words");
  expect_no_finding("wide accesses in bounds");

  // the planted bug: one uint4 past the end of the source
  Buffer a(n * 16), b(n * 16 + 16), a2(n * 8 + 8), b2(n * 8 + 8);
  cudaMemset(a.ptr, 0, n * 16);
  cudaMemset(a2.ptr, 0, n * 8 + 8);
  wide_copy_kernel<<<2, 32>>>(a.as<uint4>(), b.as<uint4>(), a2.as<uint2>(), b2.as<uint2>(), n + 1);
  cudaDeviceSynchronize();
  const uint3 block{1, 0, 0}, thread{8, 0, 0};
  expect_finding("a uint4 past the end", sim::Check::out_of_bounds, "wide_copy_kernel",
                 "0 bytes past the end of allocation", &block, &thread);
  cudaStreamDestroy(s);
}


// The half and bfloat16 conversions (cuda_fp16.h) as the device's cvt.rn: known bits at the
// edges (ties to even, the largest finite values and overflow, subnormals, NaN), then every
// exponent against plora/numerics.h's conversions, which must agree on every non-NaN float.
float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

void half_and_bfloat16_conversions() {
  const struct {
    uint32_t f;
    unsigned short bf16, f16;
  } known[] = {
      {0x3f800000u, 0x3f80, 0x3c00},  // 1
      {0x3f808000u, 0x3f80, 0x3c04},  // 1 + 2^-8: a bf16 tie, to even (down)
      {0x3f818000u, 0x3f82, 0x3c0c},  // 1 + 3 * 2^-8: a bf16 tie, to even (up)
      {0x3f801000u, 0x3f80, 0x3c00},  // 1 + 2^-11: an f16 tie, to even (down)
      {0x3f803000u, 0x3f80, 0x3c02},  // 1 + 3 * 2^-11: an f16 tie, to even (up)
      {0xbfc00000u, 0xbfc0, 0xbe00},  // -1.5
      {0x7f7fffffu, 0x7f80, 0x7c00},  // the largest float: infinity in both
      {0x7f7f7fffu, 0x7f7f, 0x7c00},  // just below bf16's overflow
      {0x477fe000u, 0x4780, 0x7bff},  // 65504, the largest f16
      {0x477ff000u, 0x4780, 0x7c00},  // 65520: rounds past the largest f16
      {0x33800000u, 0x3380, 0x0001},  // 2^-24, the smallest f16 subnormal
      {0x33000000u, 0x3300, 0x0000},  // 2^-25: an f16 tie between 0 and 2^-24, to even
      {0x33c00000u, 0x33c0, 0x0002},  // 1.5 * 2^-24: an f16 tie, to even (up)
      {0x00018000u, 0x0002, 0x0000},  // a float subnormal, a bf16 tie, to even (up)
      {0x00008000u, 0x0000, 0x0000},  // ... to even (down)
      {0xff800000u, 0xff80, 0xfc00},  // -infinity
      {0x7fc00001u, 0x7fff, 0x7fff},  // NaN: the canonical NaN
      {0xffa00000u, 0x7fff, 0x7fff},  // a signalling NaN with its sign: the canonical NaN too
  };
  for (const auto& k : known) {
    const unsigned short bf = __bfloat16_as_ushort(__float2bfloat16_rn(from_bits(k.f)));
    const unsigned short h = __half_as_ushort(__float2half_rn(from_bits(k.f)));
    CHECK(bf == k.bf16 && h == k.f16, "float %08x: bf16 %04x (expected %04x), f16 %04x (expected %04x)", k.f, bf,
          k.bf16, h, k.f16);
  }
  CHECK(__half2float(__ushort_as_half(0x0001)) == from_bits(0x33800000u) &&
            __half2float(__ushort_as_half(0x7bff)) == 65504.0f && __half2float(__ushort_as_half(0xfc00)) == -INFINITY &&
            std::isnan(__half2float(__ushort_as_half(0x7e01))) &&
            __bfloat162float(__ushort_as_bfloat16(0x3f81)) == 1.0078125f,
        "half / bfloat16 to float");
  // every exponent, with mantissas near the rounding boundaries and random ones
  std::mt19937 rng(11);
  int64_t differ = 0;
  for (uint32_t sign_exp = 0; sign_exp < 512; ++sign_exp) {
    if ((sign_exp & 0xffu) == 0xffu) continue;  // infinities and NaNs: above
    for (uint32_t q = 0; q < 64; ++q) {
      const uint32_t low = q < 16 ? (0x7fffu + q - 8) & 0x7fffffu : q < 32 ? (0xfffu + q - 24) : rng() & 0x7fffffu;
      const uint32_t u = sign_exp << 23 | low;
      const float f = from_bits(u);
      differ += __bfloat16_as_ushort(__float2bfloat16_rn(f)) != plora::f32_to_bf16(f);
      differ += __half_as_ushort(__float2half_rn(f)) != plora::f32_to_f16(f);
      differ += __half2float(__ushort_as_half(static_cast<unsigned short>(u))) !=
                    plora::f16_to_f32(static_cast<uint16_t>(u)) &&
                !std::isnan(plora::f16_to_f32(static_cast<uint16_t>(u)));
    }
  }
  CHECK(differ == 0, "the simulator's conversions and plora/numerics.h differ on %lld values", (long long)differ);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--out-of-bounds") == 0) {
    // the AddressSanitizer build: the off-by-one kernel alone, which AddressSanitizer must stop
    std::printf("simulated: an off-by-one kernel under AddressSanitizer\n");
    const int n = 100;
    Buffer x(n * 4), y(n * 4);
    upload(x, std::vector<float>(n, 1.5f));
    twice_kernel<<<1, 128>>>(x.as<float>(), y.as<float>(), n + 1);
    cudaDeviceSynchronize();
    std::printf("FAILED: the out-of-bounds read went unnoticed\n");
    return 1;
  }
  std::printf("simulated: the CUDA simulator's own checks (native/tests/sim)\n");
  planted_missing_barrier();
  planted_wrong_shuffle_offset();
  planted_off_by_one();
  planted_racy_shared_write();
  planted_plain_add_across_blocks();
  planted_partial_barrier();
  planted_partial_shuffle();
  planted_uninitialized_read();
  planted_atomic_against_plain();
  planted_host_access();
  launch_limits();
  mma_against_float64(false);
  mma_against_float64(true);
  movmatrix_transposes();
  builtins_and_collectives();
  streams_and_copies();
  wide_accesses_and_stream_ordered_memory();
  half_and_bfloat16_conversions();
  std::printf("%s (%d failures)\n", g_failures ? "FAILED" : "OK", g_failures);
  return g_failures ? 1 : 0;
}
