// The CUDA runtime of the simulator: memory calls, streams (in-order queues that run when the host
// waits), events, errors, and launches: the blocks of a grid run one after another, the threads of
// a block as fibers that the scheduler below switches between at barriers and warp collectives.
// It refuses the configurations a device refuses and reports, with kernel, block and thread, the
// barriers and collectives that part of a block or warp does not reach.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "fibers.h"
#include "shadow.h"
#include "sim.h"

namespace sim {

uint3 thread_idx, block_idx;
dim3 block_dim, grid_dim;
Running running;

// ---- findings ----

namespace {

std::vector<Finding> g_findings;
uint32_t g_reported_launch = 0;  // flood control: findings printed per launch
int g_printed = 0;
constexpr int kPrintedPerLaunch = 12;

uint3 coords3(uint32_t linear, dim3 d) {
  return uint3{linear % d.x, (linear / d.x) % d.y, linear / (d.x * d.y)};
}

}  // namespace

const char* check_name(Check check) {
  switch (check) {
    case Check::race: return "race";
    case Check::atomic_race: return "atomic race";
    case Check::uninitialized: return "read of unwritten memory";
    case Check::out_of_bounds: return "out of bounds";
    case Check::barrier: return "divergent barrier";
    case Check::shuffle: return "divergent warp collective";
    case Check::shared_memory: return "shared memory";
    case Check::host_access: return "host access to device memory";
  }
  return "?";
}

std::string coords(uint32_t linear, dim3 dims) {
  const uint3 c = coords3(linear, dims);
  return "(" + std::to_string(c.x) + "," + std::to_string(c.y) + "," + std::to_string(c.z) + ")";
}

void report(Check check, const std::string& what) {
  Finding f{check, running.kernel ? running.kernel : "", uint3{0, 0, 0}, uint3{0, 0, 0}, ""};
  if (running.kernel != nullptr) {
    f.block = coords3(running.block, grid_dim);
    f.thread = coords3(running.thread, block_dim);
    f.message = std::string("simulator: ") + check_name(check) + ": kernel " + running.kernel + ", block " +
                coords(running.block, grid_dim) + ", thread " + coords(running.thread, block_dim) + " " + what;
  } else {
    f.message = std::string("simulator: ") + check_name(check) + ": " + what;
  }
  if (g_reported_launch != running.launch) {
    g_reported_launch = running.launch;
    g_printed = 0;
  }
  if (g_printed < kPrintedPerLaunch) std::fprintf(stderr, "%s\n", f.message.c_str());
  else if (g_printed == kPrintedPerLaunch) std::fprintf(stderr, "simulator: (more findings in this launch)\n");
  ++g_printed;
  if (g_findings.size() < 100000) g_findings.push_back(std::move(f));
}

std::vector<Finding> take_findings() { return std::move(g_findings); }

// ---- settings ----

namespace {

int64_t env_integer(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::strtoll(v, nullptr, 10) : 0;
}

}  // namespace

int64_t launch_cap_setting() {
  static const int64_t cap = env_integer("PLORA_SIM_LAUNCH_CAP");
  return cap;
}

uint64_t shuffle_seed() {
  static const uint64_t seed = static_cast<uint64_t>(env_integer("PLORA_SIM_SHUFFLE"));
  return seed;
}

namespace {

bool g_next_capped = false;  // lowered_cap held the next launch's grid below what it wanted
std::vector<KernelStats> g_stats;
// The random order of a shuffled run (PLORA_SIM_SHUFFLE), one stream for the whole process.
std::mt19937_64& order_rng() {
  static std::mt19937_64 rng(shuffle_seed());
  return rng;
}

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

// ---- the block scheduler ----

namespace {

enum class State { ready, barrier, collective, done };

struct Thread {
  Fiber fiber;
  uint32_t linear = 0;
  uint3 idx{0, 0, 0};
  State state = State::done;
  const char* file = "";  // where it waits
  int line = 0;
  WarpOp op = WarpOp::sync;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  int arg = 0, width = 32;
};

struct Block {
  std::vector<std::unique_ptr<Thread>> pool;  // fibers, reused by every block
  uint32_t size = 0, done = 0, at_barrier = 0;
  std::vector<unsigned> arrived;  // per warp: lanes waiting in a collective
  std::deque<uint32_t> ready;
  const std::function<void()>* body = nullptr;
  Thread* current = nullptr;
  bool aborted = false;  // a deadlock: the rest of the block does not run
  bool failed = false;   // some block of the current launch was aborted
} g_block;

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::shfl: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::all: return "__all_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::sync: return "__syncwarp";
  }
  return "?";
}

std::string hex(unsigned mask) {
  char text[16];
  std::snprintf(text, sizeof text, "%#x", mask);
  return text;
}

std::string site(const char* file, int line) {
  const char* slash = std::strrchr(file, '/');
  return std::string(slash ? slash + 1 : file) + ":" + std::to_string(line);
}

void make_ready(uint32_t t) {
  g_block.pool[t]->state = State::ready;
  g_block.ready.push_back(t);
}

// Reports as the given thread of the running block.
void report_as(uint32_t t, Check check, const std::string& what) {
  const uint32_t saved = running.thread;
  running.thread = t;
  report(check, what);
  running.thread = saved;
}

// Every thread that has not exited waits at a barrier: they all go on.
void release_barrier() {
  Block& b = g_block;
  const Thread* first = nullptr;
  for (uint32_t t = 0; t < b.size; ++t) {
    const Thread& th = *b.pool[t];
    if (th.state != State::barrier) continue;
    if (first == nullptr) first = &th;
    else if (th.file != first->file || th.line != first->line) {
      report_as(t, Check::barrier, "waits at __syncthreads() at " + site(th.file, th.line) + " while thread " +
                                       coords(first->linear, block_dim) + " waits at " + site(first->file, first->line));
      break;
    }
  }
  if (b.done > 0)
    report_as(first->linear, Check::barrier, "__syncthreads() at " + site(first->file, first->line) + " is reached by " +
                                                 std::to_string(b.at_barrier) + " of the block's " +
                                                 std::to_string(b.size) + " threads; the others have exited");
  ++running.phase;
  b.at_barrier = 0;
  for (uint32_t t = 0; t < b.size; ++t)
    if (b.pool[t]->state == State::barrier) make_ready(t);
}

void thread_main(void* arg) {
  Thread* t = static_cast<Thread*>(arg);
  (*g_block.body)();
  t->state = State::done;
  ++g_block.done;
  if (g_block.at_barrier > 0 && g_block.at_barrier + g_block.done == g_block.size) release_barrier();
}

// Nothing can run and some threads wait: a barrier or collective that part of the block never
// reaches. Reports it and abandons the block.
void deadlock() {
  Block& b = g_block;
  for (uint32_t t = 0; t < b.size; ++t) {
    const Thread& th = *b.pool[t];
    if (th.state != State::collective) continue;
    const uint32_t warp = t / 32, lane = t % 32;
    std::string missing;
    for (uint32_t l = 0; l < 32; ++l) {
      if (!((th.mask >> l) & 1u) || (b.arrived[warp] >> l) & 1u) continue;
      const uint32_t other = warp * 32 + l;
      const Thread& o = *b.pool[other];
      missing += " lane " + std::to_string(l) +
                 (o.state == State::done ? " (exited)"
                                         : o.state == State::barrier ? " (waits at __syncthreads() at " + site(o.file, o.line) + ")"
                                                                     : " (waits in another collective)") +
                 ";";
      if (missing.size() > 200) break;
    }
    report_as(t, Check::shuffle, std::string("(lane ") + std::to_string(lane) + ") waits in " + op_name(th.op) + " at " +
                                     site(th.file, th.line) + " with mask " + hex(th.mask) +
                                     ", which names lanes that never reach it:" + missing);
    b.aborted = true;
    return;
  }
  for (uint32_t t = 0; t < b.size; ++t) {
    const Thread& th = *b.pool[t];
    if (th.state != State::barrier) continue;
    report_as(t, Check::barrier, "waits at __syncthreads() at " + site(th.file, th.line) +
                                     ", which the rest of the block never reaches");
    break;
  }
  b.aborted = true;
}

void run_block(uint32_t linear, uint32_t threads) {
  Block& b = g_block;
  running.block = linear;
  running.phase = 0;
  block_idx = coords3(linear, grid_dim);
  shared_reset();
  while (b.pool.size() < threads) b.pool.push_back(std::make_unique<Thread>());
  b.size = threads;
  b.done = b.at_barrier = 0;
  b.arrived.assign((threads + 31) / 32, 0u);
  b.ready.clear();
  b.aborted = false;
  std::vector<uint32_t> order(threads);
  for (uint32_t t = 0; t < threads; ++t) order[t] = t;
  if (shuffle_seed() != 0) std::shuffle(order.begin(), order.end(), order_rng());
  for (uint32_t t : order) {
    Thread& th = *b.pool[t];
    th.linear = t;
    th.idx = coords3(t, block_dim);
    th.fiber.start(thread_main, &th);
    make_ready(t);
  }
  while (!b.aborted) {
    if (b.ready.empty()) {
      if (b.done == b.size) break;
      deadlock();
      break;
    }
    if (shuffle_seed() != 0) {  // a random ready thread goes next
      const size_t pick = std::uniform_int_distribution<size_t>(0, b.ready.size() - 1)(order_rng());
      std::swap(b.ready[pick], b.ready.front());
    }
    const uint32_t t = b.ready.front();
    b.ready.pop_front();
    Thread& th = *b.pool[t];
    b.current = &th;
    running.thread = t;
    thread_idx = th.idx;
    th.fiber.resume();
  }
  b.current = nullptr;
  if (b.aborted) b.failed = true;
}

}  // namespace

void syncthreads(const char* file, int line) {
  Block& b = g_block;
  Thread* t = b.current;
  t->state = State::barrier;
  t->file = file;
  t->line = line;
  if (++b.at_barrier + b.done == b.size) release_barrier();
  t->fiber.yield();
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width, const char* file, int line) {
  Block& b = g_block;
  Thread* t = b.current;
  const uint32_t warp = t->linear / 32, lane = t->linear % 32;
  const uint32_t lanes = std::min<uint32_t>(32, b.size - warp * 32);
  const unsigned existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
  if (!((mask >> lane) & 1u)) {
    report(Check::shuffle, std::string("calls ") + op_name(op) + " at " + site(file, line) + " with mask " + hex(mask) +
                               ", which leaves out its own lane " + std::to_string(lane));
    mask |= 1u << lane;
  }
  if (mask & ~existing) {
    report(Check::shuffle, std::string("calls ") + op_name(op) + " at " + site(file, line) + " with mask " + hex(mask) +
                               ", which names lanes the block does not have (" + std::to_string(lanes) +
                               " in this warp)");
    mask &= existing;
  }
  if (op != WarpOp::ballot && op != WarpOp::all && op != WarpOp::any && op != WarpOp::sync &&
      (width <= 0 || width > 32 || (width & (width - 1)) != 0)) {
    report(Check::shuffle, std::string(op_name(op)) + " at " + site(file, line) + " with width " +
                               std::to_string(width) + ", not a power of two up to 32");
    width = 32;
  }
  t->state = State::collective;
  t->op = op;
  t->mask = mask;
  t->value = value;
  t->arg = arg;
  t->width = width;
  t->file = file;
  t->line = line;
  b.arrived[warp] |= 1u << lane;
  if ((b.arrived[warp] & mask) == mask) {
    // the last lane of the mask is here: check that all agree, then compute every lane's result
    for (uint32_t l = 0; l < 32; ++l) {
      if (!((mask >> l) & 1u)) continue;
      const Thread& o = *b.pool[warp * 32 + l];
      if (o.mask != mask || o.op != op || o.file != file || o.line != line) {
        const std::string other = hex(o.mask);
        report(Check::shuffle, std::string(op_name(op)) + " at " + site(file, line) + " with mask " + hex(mask) +
                                   " meets lane " + std::to_string(l) + " in " + op_name(o.op) + " at " +
                                   site(o.file, o.line) + " with mask " + other);
        break;
      }
    }
    uint64_t ballot = 0;
    bool all = true;
    for (uint32_t l = 0; l < 32; ++l)
      if ((mask >> l) & 1u) {
        const bool p = b.pool[warp * 32 + l]->value != 0;
        ballot |= static_cast<uint64_t>(p) << l;
        all = all && p;
      }
    for (uint32_t l = 0; l < 32; ++l) {
      if (!((mask >> l) & 1u)) continue;
      Thread& o = *b.pool[warp * 32 + l];
      const uint32_t w = static_cast<uint32_t>(o.width), segment = l & ~(w - 1);
      int64_t src = l;
      switch (op) {
        case WarpOp::shfl: src = segment + (static_cast<uint32_t>(o.arg) & (w - 1)); break;
        case WarpOp::shfl_up: src = (l - segment) >= static_cast<uint32_t>(o.arg) ? l - o.arg : l; break;
        case WarpOp::shfl_down: src = (l - segment) + static_cast<uint32_t>(o.arg) < w ? l + o.arg : l; break;
        case WarpOp::shfl_xor: {
          const uint32_t x = l ^ static_cast<uint32_t>(o.arg);
          src = x < segment + w ? x : l;
          break;
        }
        default: break;
      }
      if (op == WarpOp::ballot) o.result = ballot;
      else if (op == WarpOp::all) o.result = all;
      else if (op == WarpOp::any) o.result = ballot != 0;
      else if (op == WarpOp::sync) o.result = 0;
      else if (src < 0 || src > 31 || !((mask >> src) & 1u)) {
        report_as(warp * 32 + l, Check::shuffle,
                  std::string(op_name(op)) + " at " + site(file, line) + " (lane " + std::to_string(l) +
                      ") reads lane " + std::to_string(src) + ", which is not in the mask " + hex(mask));
        o.result = o.value;
      } else {
        o.result = b.pool[warp * 32 + static_cast<uint32_t>(src)]->value;
      }
      make_ready(warp * 32 + l);
    }
    b.arrived[warp] &= ~mask;
  }
  t->fiber.yield();
  return t->result;
}

void* shared_memory(const void* key, size_t bytes, size_t align, const char* name) {
  void* p = shared_alloc(key, bytes, align, name);
  if (p != nullptr) return p;
  g_block.aborted = true;  // the device would not have launched the kernel
  g_block.current->fiber.yield();
  std::abort();  // an aborted block is never resumed
}

// ---- atomics ----

namespace {

template <class T, class F>
T atomic_update(T* address, F f) {
  access(address, sizeof(T), Access::atomic);
  const T old = *address;
  *address = f(old);
  return old;
}

}  // namespace
}  // namespace sim

int atomicAdd(int* a, int v) { return sim::atomic_update(a, [v](int o) { return static_cast<int>(static_cast<unsigned>(o) + static_cast<unsigned>(v)); }); }
unsigned atomicAdd(unsigned* a, unsigned v) { return sim::atomic_update(a, [v](unsigned o) { return o + v; }); }
unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
  return sim::atomic_update(a, [v](unsigned long long o) { return o + v; });
}
float atomicAdd(float* a, float v) { return sim::atomic_update(a, [v](float o) { return o + v; }); }
double atomicAdd(double* a, double v) { return sim::atomic_update(a, [v](double o) { return o + v; }); }
int atomicMax(int* a, int v) { return sim::atomic_update(a, [v](int o) { return std::max(o, v); }); }
int atomicMin(int* a, int v) { return sim::atomic_update(a, [v](int o) { return std::min(o, v); }); }
int atomicExch(int* a, int v) { return sim::atomic_update(a, [v](int) { return v; }); }
int atomicCAS(int* a, int c, int v) { return sim::atomic_update(a, [c, v](int o) { return o == c ? v : o; }); }
unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
  return sim::atomic_update(a, [c, v](unsigned long long o) { return o == c ? v : o; });
}

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

void run_launch(const char* kernel, dim3 grid, dim3 block, const std::function<void()>& body) {
  static uint32_t launches = 0;
  running.kernel = kernel;
  running.launch = ++launches;
  running.threads_per_block = block.x * block.y * block.z;
  grid_dim = grid;
  block_dim = block;
  sim::g_block.body = &body;
  sim::g_block.failed = false;
  const uint64_t blocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
  std::vector<uint32_t> order(blocks);
  for (uint64_t i = 0; i < blocks; ++i) order[i] = static_cast<uint32_t>(i);
  if (shuffle_seed() != 0) std::shuffle(order.begin(), order.end(), sim::order_rng());
  for (uint32_t linear : order) sim::run_block(linear, running.threads_per_block);
  if (sim::g_block.failed) g_launch_failed = true;
  running.kernel = nullptr;
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
  enqueue(stream, [kernel, grid, block, body = std::move(body)] { run_launch(kernel, grid, block, body); });
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
