// The CUDA surface that plora's .cu sources and tests use, for the CUDA simulator: the sources
// compile with the host C++ compiler against this header (after translate.cmake has rewritten
// their launches and __shared__ declarations) and run on the CPU. Threads of a block are fibers
// (fibers.h), so __syncthreads() is a real barrier; shuffles and votes are warp collectives that
// check their masks; memory accesses go through the shadow memory (shadow.h) in the checked build.
// A test tool: never part of a shipped library. See docs/simulator.md.
#ifndef PLORA_SIM_CUDA_RUNTIME_H
#define PLORA_SIM_CUDA_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- keywords ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
// The vector types of wide loads and stores, aligned as CUDA's (one 8- or 16-byte access each).
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(8) float2 {
  float x, y;
};

// CUDA's integer min and max (device builtins, overloaded for each integer type); the floating
// ones, fminf and fmaxf, come from <cmath>.
template <typename T, typename = std::enable_if_t<std::is_integral_v<T>>>
inline T min(T a, T b) {
  return b < a ? b : a;
}
template <typename T, typename = std::enable_if_t<std::is_integral_v<T>>>
inline T max(T a, T b) {
  return a < b ? b : a;
}

// The running thread's coordinates: the scheduler sets them before it resumes a fiber.
namespace sim {
extern uint3 thread_idx, block_idx;
extern dim3 block_dim, grid_dim;
}  // namespace sim
#define threadIdx (static_cast<const uint3&>(::sim::thread_idx))
#define blockIdx (static_cast<const uint3&>(::sim::block_idx))
#define blockDim (static_cast<const dim3&>(::sim::block_dim))
#define gridDim (static_cast<const dim3&>(::sim::grid_dim))

// ---- runtime types ----
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidPitchValue = 12,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00

// ---- runtime API (runtime.cpp) ----
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = 0);
cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                         size_t height, cudaMemcpyKind kind);
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width,
                              size_t height, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = 0);
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

// ---- device functions (scheduler.cpp) ----
namespace sim {
void syncthreads(const char* file, int line);
// A warp collective of the calling lane: every lane named in `mask` must reach the same call.
enum class WarpOp { shfl, shfl_up, shfl_down, shfl_xor, ballot, all, any, sync, mma, movmatrix };
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const char* file,
                         int line);
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (.f16.f16 when half) of the calling lane
// (cuda/mma.cuh): a warp collective of the whole warp, each lane bringing its fragments of A, B
// and C and taking its fragment of D, laid out as the PTX ISA says (scheduler.cpp).
void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], bool half, const char* file,
                  int line);
// movmatrix.sync.aligned.m8n8.trans.b16 of the calling lane (cuda/mma.cuh): a warp collective of the
// whole warp; lane l brings row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 of an 8x8 matrix of 16-bit
// elements (the lower-numbered in the low half) and takes the same elements of its transpose.
uint32_t movmatrix_m8n8_trans_b16(uint32_t a, const char* file, int line);
// Per-block storage of the __shared__ declaration identified by `key` (translate.cmake).
void* shared_memory(const void* key, size_t bytes, size_t align, const char* name);

template <class T>
T shuffle(WarpOp op, unsigned mask, T v, int arg, int width, const char* file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a shuffle moves at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  bits = warp_collective(op, mask, bits, arg, width, file, line);
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
}  // namespace sim

#define __syncthreads() ::sim::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) \
  ((void)::sim::warp_collective(::sim::WarpOp::sync, sim_mask_or_full(__VA_ARGS__), 0, 0, 32, __FILE__, __LINE__))
inline unsigned sim_mask_or_full(unsigned mask = 0xffffffffu) { return mask; }
#define SIM_SHUFFLE(op, mask, v, arg, ...) \
  ::sim::shuffle(::sim::WarpOp::op, mask, v, arg, sim_width_or_warp(__VA_ARGS__), __FILE__, __LINE__)
inline int sim_width_or_warp(int width = 32) { return width; }
#define __shfl_sync(mask, v, lane, ...) SIM_SHUFFLE(shfl, mask, v, lane, __VA_ARGS__)
#define __shfl_up_sync(mask, v, delta, ...) SIM_SHUFFLE(shfl_up, mask, v, delta, __VA_ARGS__)
#define __shfl_down_sync(mask, v, delta, ...) SIM_SHUFFLE(shfl_down, mask, v, delta, __VA_ARGS__)
#define __shfl_xor_sync(mask, v, lane_mask, ...) SIM_SHUFFLE(shfl_xor, mask, v, lane_mask, __VA_ARGS__)
#define __ballot_sync(mask, pred) \
  static_cast<unsigned>(::sim::warp_collective(::sim::WarpOp::ballot, mask, (pred) != 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(mask, pred) \
  static_cast<int>(::sim::warp_collective(::sim::WarpOp::all, mask, (pred) != 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(mask, pred) \
  static_cast<int>(::sim::warp_collective(::sim::WarpOp::any, mask, (pred) != 0, 0, 32, __FILE__, __LINE__))

// `__shared__ T name[dims];`, as translate.cmake rewrites it: one T[dims] per block.
#define SIM_SHARED(type, name, dims)                                                                  \
  static char sim_shared_key_##name;                                                                 \
  type(&name) dims = *static_cast<type(*) dims>(                                                     \
      ::sim::shared_memory(&sim_shared_key_##name, sizeof(type dims), alignof(type dims), #name))

// Atomics: the shadow memory records them as atomic accesses (scheduler.cpp).
int atomicAdd(int* address, int value);
unsigned atomicAdd(unsigned* address, unsigned value);
unsigned long long atomicAdd(unsigned long long* address, unsigned long long value);
float atomicAdd(float* address, float value);
double atomicAdd(double* address, double value);
int atomicMax(int* address, int value);
int atomicMin(int* address, int value);
unsigned long long atomicMax(unsigned long long* address, unsigned long long value);
unsigned long long atomicMin(unsigned long long* address, unsigned long long value);
int atomicExch(int* address, int value);
int atomicCAS(int* address, int compare, int value);
unsigned long long atomicCAS(unsigned long long* address, unsigned long long compare, unsigned long long value);

// Rounded arithmetic: the kernels are compiled with -ffp-contract=off, so these are never fused.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
// cos(pi x), as CUDA's cospif: exact at the integers and half-integers (1, -1, +0), NaN for
// infinities and NaN. The argument is reduced exactly (x mod 2, then |x| folded into [0, 1]) and
// the cosine taken in double, within one rounding of the true value.
inline float cospif(float x) {
  if (!std::isfinite(x)) return std::numeric_limits<float>::quiet_NaN();
  double r = std::fmod(std::fabs(static_cast<double>(x)), 2.0);  // exact
  if (r > 1.0) r = 2.0 - r;                                        // exact: cos(pi (2 - r)) = cos(pi r)
  if (r == 0.5) return 0.0f;
  return static_cast<float>(std::cos(3.14159265358979323846 * r));
}
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// ---- launches ----
namespace sim {

// Queues a launch of `body` (the kernel applied to its arguments) on `stream`; checks the
// configuration first, as the device does, and records a refusal as the last error.
void launch(const char* kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
            std::function<void()> body);

// `kernel<<<grid, block, shared_bytes, stream>>>(args...)`, as translate.cmake rewrites it:
// Launch(kernel, "kernel", grid, block, shared_bytes, stream)(args...). The arguments are
// converted to the kernel's parameter types and copied, as a launch does.
template <class... Params>
class Launch {
 public:
  Launch(void (*kernel)(Params...), const char* name, dim3 grid, dim3 block, size_t shared_bytes = 0,
         cudaStream_t stream = 0)
      : kernel_(kernel), name_(name), grid_(grid), block_(block), shared_(shared_bytes), stream_(stream) {}

  template <class... Args>
  void operator()(Args&&... args) const {
    static_assert(sizeof...(Args) == sizeof...(Params), "a launch passes every kernel parameter");
    std::tuple<std::decay_t<Params>...> values(std::forward<Args>(args)...);
    auto kernel = kernel_;
    launch(name_, grid_, block_, shared_, stream_, [kernel, values] { std::apply(kernel, values); });
  }

 private:
  void (*kernel_)(Params...);
  const char* name_;
  dim3 grid_, block_;
  size_t shared_;
  cudaStream_t stream_;
};

// The launch cap the kernels' grid-stride launches use (PLORA_CUDA_LAUNCH_CAP in launch.cuh):
// `cap`, lowered to PLORA_SIM_LAUNCH_CAP blocks when that variable is set. Notes when the next
// launch's grid-stride loops must turn more than once (wanted > the cap).
int64_t lowered_cap(int64_t wanted, int64_t cap);

}  // namespace sim

#define PLORA_CUDA_LAUNCH_CAP(wanted, cap) ::sim::lowered_cap(wanted, cap)

#endif
