// The CUDA runtime API of the simulator: device memory, copies (2-D too) and memsets, streams as
// in-order queues that run when the host waits for them, events, errors, and launches: checked
// against a device's limits when queued, run by the block scheduler (scheduler.cpp) in stream
// order. Also the launch caps and the count of launches per kernel.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "shadow.h"
#include "sim.h"

namespace sim {

// ---- launch caps, launches per kernel ----

int64_t launch_cap_setting() {
  static const char* setting = std::getenv("PLORA_SIM_LAUNCH_CAP");
  static const int64_t cap = setting != nullptr ? std::strtoll(setting, nullptr, 10) : 0;
  return cap;
}

namespace {

bool g_next_capped = false;  // lowered_cap held the next launch's grid below what it wanted
std::vector<KernelStats> g_stats;

void count_launch(const char* kernel, bool capped) {
  for (KernelStats& s : g_stats)
    if (s.name == kernel) {
      ++s.launches;
      s.capped += capped;
      return;
    }
  g_stats.push_back({kernel, 1, capped ? 1 : 0});
}

}  // namespace

int64_t lowered_cap(int64_t wanted, int64_t cap) {
  const int64_t setting = launch_cap_setting();
  const int64_t result = setting > 0 && setting < cap ? setting : cap;
  g_next_capped = g_next_capped || wanted > result;
  return result;
}

std::vector<KernelStats> kernel_stats() { return g_stats; }

}  // namespace sim

// ---- streams, events, errors ----

using namespace sim;

struct CUstream_st {
  std::deque<std::function<void()>> ops;
  uint64_t queued = 0, executed = 0;
  bool blocking = true;  // synchronizes with the legacy default stream
};

struct CUevent_st {
  CUstream_st* stream = nullptr;
  uint64_t target = 0;  // the stream's operations up to here precede the event
};

namespace {

CUstream_st g_legacy;                  // stream 0
std::vector<CUstream_st*> g_streams;   // the created ones
cudaError_t g_last = cudaSuccess;      // cudaGetLastError
bool g_launch_failed = false;          // a block was abandoned: the next wait reports it

CUstream_st* resolve(cudaStream_t s) { return s != nullptr ? s : &g_legacy; }

cudaError_t fail(cudaError_t e) {
  g_last = e;
  return e;
}

// Runs the stream's operations, in order, up to `until` (all by default).
void drain(CUstream_st* s, uint64_t until = UINT64_MAX) {
  while (!s->ops.empty() && s->executed < until) {
    std::function<void()> op = std::move(s->ops.front());
    s->ops.pop_front();
    op();
    ++s->executed;
  }
}

void drain_all() {
  drain(&g_legacy);
  for (CUstream_st* s : g_streams) drain(s);
}

// Queues op on s with the legacy default stream's ordering: work on stream 0 waits for all
// blocking streams, work on a blocking stream waits for stream 0.
void enqueue(cudaStream_t stream, std::function<void()> op) {
  CUstream_st* s = resolve(stream);
  if (s == &g_legacy) {
    for (CUstream_st* other : g_streams)
      if (other->blocking) drain(other);
  } else if (s->blocking) {
    drain(&g_legacy);
  }
  s->ops.push_back(std::move(op));
  ++s->queued;
}

cudaError_t waited() {  // what a synchronizing call returns
  if (!g_launch_failed) return cudaSuccess;
  g_launch_failed = false;
  return fail(cudaErrorLaunchFailure);
}

bool known_stream(cudaStream_t s) {
  return s == nullptr || std::find(g_streams.begin(), g_streams.end(), s) != g_streams.end();
}

}  // namespace

void sim::launch(const char* kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                 std::function<void()> body) {
  const bool capped = g_next_capped;
  g_next_capped = false;
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
      threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 ||
      grid.z > 65535) {
    fail(cudaErrorInvalidConfiguration);
    return;
  }
  if (shared_bytes > 48 * 1024) {  // dynamic shared memory beyond the default limit
    fail(cudaErrorInvalidValue);
    return;
  }
  if (!known_stream(stream)) {
    fail(cudaErrorInvalidResourceHandle);
    return;
  }
  count_launch(kernel, capped);
  enqueue(stream, [kernel, grid, block, body = std::move(body)] {
    if (!run_grid(kernel, grid, block, body)) g_launch_failed = true;
  });
}

// ---- the runtime API ----

cudaError_t cudaGetLastError(void) {
  const cudaError_t e = g_last;
  g_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) { return g_last; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidPitchValue: return "cudaErrorInvalidPitchValue";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidPitchValue: return "invalid pitch argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure (simulated: see the simulator's findings)";
    case cudaErrorNotSupported: return "operation not supported (by the simulator)";
  }
  return "unknown error";
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
  drain_all();
  return waited();
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = sim::device_alloc(bytes);
  return *ptr != nullptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return cudaSuccess;
  drain_all();  // cudaFree waits for the device
  return sim::device_free(ptr) ? cudaSuccess : fail(cudaErrorInvalidValue);
}

// Stream-ordered allocation: the memory is usable by work queued after the call; the free runs
// in its stream's order, after the work queued before it.
cudaError_t cudaMallocAsync(void** ptr, size_t bytes, cudaStream_t stream) {
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  return cudaMalloc(ptr, bytes);
}

cudaError_t cudaFreeAsync(void* ptr, cudaStream_t stream) {
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  if (ptr == nullptr) return cudaSuccess;
  enqueue(stream, [ptr] {
    if (!sim::device_free(ptr)) fail(cudaErrorInvalidValue);
  });
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  *ptr = std::malloc(bytes > 0 ? bytes : 1);
  return *ptr != nullptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  drain_all();
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  *total = size_t(64) << 30;
  *free = *total - sim::device_bytes_in_use();
  return cudaSuccess;
}

namespace {

// One rectangular copy: height rows of width bytes. Device ranges are checked when it is queued;
// a copy from the host takes its bytes then (pageable memory), the others run in stream order.
cudaError_t copy2d(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                   cudaMemcpyKind kind, cudaStream_t stream, bool wait) {
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  if (width == 0 || height == 0) return cudaSuccess;
  if (height > 1 && (dpitch < width || spitch < width || dpitch > 2147483647u || spitch > 2147483647u))
    return fail(cudaErrorInvalidPitchValue);
  const bool dst_dev = sim::is_device(dst), src_dev = sim::is_device(src);
  if (kind == cudaMemcpyDefault)
    kind = src_dev ? (dst_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                   : (dst_dev ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice) return fail(cudaErrorInvalidMemcpyDirection);
  const bool want_dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool want_src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (want_dst_dev != dst_dev || want_src_dev != src_dev) return fail(cudaErrorInvalidValue);
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  for (size_t r = 0; r < height; ++r) {
    if (dst_dev && !sim::device_range(d + r * dpitch, width, "cudaMemcpy destination")) return fail(cudaErrorInvalidValue);
    if (src_dev && !sim::device_range(s + r * spitch, width, "cudaMemcpy source")) return fail(cudaErrorInvalidValue);
  }
  std::shared_ptr<std::vector<char>> staged;
  if (!src_dev) {  // from the host: the bytes are taken now
    staged = std::make_shared<std::vector<char>>(width * height);
    for (size_t r = 0; r < height; ++r) std::memcpy(staged->data() + r * width, s + r * spitch, width);
  }
  enqueue(stream, [=] {
    for (size_t r = 0; r < height; ++r) {
      char* to = d + r * dpitch;
      const char* from = staged ? staged->data() + r * width : s + r * spitch;
      std::memmove(to, from, width);
      if (dst_dev && src_dev) sim::device_copied(to, from, width);
      else if (dst_dev) sim::host_wrote(to, width);
    }
  });
  if (wait) {
    drain(resolve(stream));
    return waited();
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  return copy2d(dst, bytes, src, bytes, bytes, 1, kind, nullptr, true);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  return copy2d(dst, bytes, src, bytes, bytes, 1, kind, stream, false);
}

cudaError_t cudaMemcpy2D(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                         cudaMemcpyKind kind) {
  return copy2d(dst, dpitch, src, spitch, width, height, kind, nullptr, true);
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t stream) {
  return copy2d(dst, dpitch, src, spitch, width, height, kind, stream, false);
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (!sim::is_device(ptr) || !sim::device_range(ptr, bytes, "cudaMemset")) return fail(cudaErrorInvalidValue);
  enqueue(stream, [=] {
    std::memset(ptr, value, bytes);
    sim::host_wrote(ptr, bytes);
  });
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  const cudaError_t e = cudaMemsetAsync(ptr, value, bytes, nullptr);
  if (e != cudaSuccess) return e;
  drain(&g_legacy);
  return waited();
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  CUstream_st* s = new CUstream_st();
  s->blocking = (flags & cudaStreamNonBlocking) == 0;
  g_streams.push_back(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  auto it = std::find(g_streams.begin(), g_streams.end(), stream);
  if (stream == nullptr || it == g_streams.end()) return fail(cudaErrorInvalidResourceHandle);
  drain(stream);  // queued work still runs
  g_streams.erase(it);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  if (stream == nullptr) drain_all();
  else drain(stream);
  return waited();
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  return resolve(stream)->ops.empty() ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st();
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) { return cudaEventCreate(event); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  event->stream = resolve(stream);
  event->target = event->stream->queued;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event->stream != nullptr) drain(event->stream, event->target);
  return waited();
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  return event->stream == nullptr || event->stream->executed >= event->target ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned) {
  if (!known_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  CUstream_st* source = event->stream;
  const uint64_t target = event->target;
  if (source != nullptr) enqueue(stream, [source, target] { drain(source, target); });
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  *ms = 0.0f;
  return fail(cudaErrorNotSupported);  // the simulator has no timing
}

