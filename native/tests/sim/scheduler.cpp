// The block scheduler of the CUDA simulator: how a launch runs. The blocks of a grid run one after
// another; the threads of a block are fibers that it switches between where they wait, at
// __syncthreads() and in warp collectives (shuffles, votes), and it reports, with kernel, block and
// thread, a barrier or collective that part of a block or warp does not reach. Also the atomics
// (recorded as such by the shadow memory) and the findings of every check.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
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

// ---- the order of threads and blocks ----

uint64_t shuffle_seed() {
  static const char* setting = std::getenv("PLORA_SIM_SHUFFLE");
  static const uint64_t seed = setting != nullptr ? std::strtoull(setting, nullptr, 10) : 0;
  return seed;
}

namespace {

// The random order of a shuffled run, one stream for the whole process.
std::mt19937_64& order_rng() {
  static std::mt19937_64 rng(shuffle_seed());
  return rng;
}

}  // namespace

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
    case WarpOp::mma: return "mma.sync.aligned.m16n8k16";
    case WarpOp::movmatrix: return "movmatrix.sync.aligned.m8n8.trans";
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

// The fragments a lane brings to an mma (registers on its fiber's stack, alive while it waits).
struct MmaFragments {
  float* d;
  const uint32_t* a;
  const uint32_t* b;
  const float* c;
  bool f16;  // the elements of A and B: IEEE half precision, else bfloat16
};

float bf16_bits_to_float(uint32_t bits) {
  const uint32_t word = (bits & 0xffffu) << 16;
  float f;
  std::memcpy(&f, &word, sizeof f);
  return f;
}

// IEEE half precision, exactly: subnormals, infinities and NaN included.
float f16_bits_to_float(uint32_t bits) {
  const uint32_t sign = (bits >> 15) & 1u, exponent = (bits >> 10) & 31u, mantissa = bits & 0x3ffu;
  float magnitude;
  if (exponent == 0) magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  else if (exponent == 31) magnitude = mantissa == 0 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  else magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  return sign ? -magnitude : magnitude;
}

// D = A B + C of one warp's mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (or .f16.f16), every lane's
// fragments gathered before any lane's D is written (D may be C). The layout is the PTX ISA's,
// "Matrix Fragments for mma.m16n8k16 with floating point type" (section 9.7.14.5.8 in ISA 8.x:
// https://docs.nvidia.com/cuda/parallel-thread-execution/#warp-level-matrix-fragment-mma-16816-float),
// with groupID = lane >> 2, threadID_in_group = lane % 4 and each .b32 register holding its lower-
// numbered element in its low half:
//   A a0..a7: row groupID for i in {0,1,4,5}, groupID + 8 otherwise; col 2 threadID_in_group + (i & 1), + 8 for i >= 4
//   B b0..b3: row 2 threadID_in_group + (i & 1), + 8 for i >= 2; col groupID
//   C, D c0..c3: row groupID for i < 2, groupID + 8 otherwise; col 2 threadID_in_group + (i & 1)
// Each element of D is its 16 products and C summed in double (a bf16 product is exact there),
// rounded once to fp32: the tensor core's own order and rounding are not modelled. Without every
// lane (reported by warp_collective) D is NaN.
void mma_warp(uint32_t warp, unsigned mask) {
  Block& b = g_block;
  float a[16][16] = {}, bm[16][8] = {}, c[16][8] = {};
  for (uint32_t l = 0; l < 32; ++l) {
    if (!((mask >> l) & 1u)) continue;
    const MmaFragments& f = *reinterpret_cast<const MmaFragments*>(b.pool[warp * 32 + l]->value);
    const uint32_t group = l >> 2, in_group = l % 4;
    auto element = [&f](uint32_t bits) { return f.f16 ? f16_bits_to_float(bits & 0xffffu) : bf16_bits_to_float(bits); };
    for (uint32_t i = 0; i < 8; ++i)
      a[group + ((i & 2) ? 8 : 0)][in_group * 2 + (i & 1) + (i >= 4 ? 8 : 0)] = element(f.a[i / 2] >> (16 * (i & 1)));
    for (uint32_t i = 0; i < 4; ++i)
      bm[in_group * 2 + (i & 1) + (i >= 2 ? 8 : 0)][group] = element(f.b[i / 2] >> (16 * (i & 1)));
    for (uint32_t i = 0; i < 4; ++i) c[group + (i >= 2 ? 8 : 0)][in_group * 2 + (i & 1)] = f.c[i];
  }
  for (uint32_t l = 0; l < 32; ++l) {
    if (!((mask >> l) & 1u)) continue;
    const MmaFragments& f = *reinterpret_cast<const MmaFragments*>(b.pool[warp * 32 + l]->value);
    const uint32_t group = l >> 2, in_group = l % 4;
    for (uint32_t i = 0; i < 4; ++i) {
      const uint32_t row = group + (i >= 2 ? 8 : 0), col = in_group * 2 + (i & 1);
      double sum = c[row][col];
      for (uint32_t k = 0; k < 16; ++k) sum += static_cast<double>(a[row][k]) * bm[k][col];
      f.d[i] = mask == 0xffffffffu ? static_cast<float>(sum) : std::numeric_limits<float>::quiet_NaN();
    }
  }
}

// Lane l's word of the transpose of the 8x8 matrix of 16-bit elements whose row i / 4, columns
// 2 (i % 4) and 2 (i % 4) + 1 lane i brings (movmatrix .trans, the layout of the PTX ISA's "Matrix
// Fragment for movmatrix"): element (row, col) of the result is element (col, row) of the input, so
// lane l (row l / 4) takes column l / 4 of rows 2 (l % 4) and 2 (l % 4) + 1. Without every lane
// (reported by warp_collective) the word is all ones: two bf16 NaNs.
uint64_t transposed_word(uint32_t warp, uint32_t l, unsigned mask) {
  if (mask != 0xffffffffu) return 0xffffffffu;
  const uint32_t col = l / 4, half = col % 2;
  uint64_t word = 0;
  for (uint32_t e = 0; e < 2; ++e) {
    const uint32_t row = 2 * (l % 4) + e;  // the input's row: its lanes are 4 row .. 4 row + 3
    const uint64_t source = g_block.pool[warp * 32 + 4 * row + col / 2]->value;
    word |= ((source >> (16 * half)) & 0xffffu) << (16 * e);
  }
  return word;
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
  if (op != WarpOp::ballot && op != WarpOp::all && op != WarpOp::any && op != WarpOp::sync && op != WarpOp::mma &&
      op != WarpOp::movmatrix &&
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
    if (op == WarpOp::mma) mma_warp(warp, mask);
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
      else if (op == WarpOp::sync || op == WarpOp::mma) o.result = 0;
      else if (op == WarpOp::movmatrix) o.result = transposed_word(warp, l, mask);
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

void mma_m16n8k16(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], bool half, const char* file,
                  int line) {
  MmaFragments f{d, a, b, c, half};
  warp_collective(WarpOp::mma, 0xffffffffu, reinterpret_cast<uintptr_t>(&f), 0, 32, file, line);
}

uint32_t movmatrix_m8n8_trans_b16(uint32_t a, const char* file, int line) {
  return static_cast<uint32_t>(warp_collective(WarpOp::movmatrix, 0xffffffffu, a, 0, 32, file, line));
}

void* shared_memory(const void* key, size_t bytes, size_t align, const char* name) {
  void* p = shared_alloc(key, bytes, align, name);
  if (p != nullptr) return p;
  g_block.aborted = true;  // the device would not have launched the kernel
  g_block.current->fiber.yield();
  std::abort();  // an aborted block is never resumed
}


bool run_grid(const char* kernel, dim3 grid, dim3 block, const std::function<void()>& body) {
  static uint32_t launches = 0;
  running.kernel = kernel;
  running.launch = ++launches;
  running.threads_per_block = block.x * block.y * block.z;
  grid_dim = grid;
  block_dim = block;
  g_block.body = &body;
  g_block.failed = false;
  const uint64_t blocks = static_cast<uint64_t>(grid.x) * grid.y * grid.z;
  std::vector<uint32_t> order(blocks);
  for (uint64_t i = 0; i < blocks; ++i) order[i] = static_cast<uint32_t>(i);
  if (shuffle_seed() != 0) std::shuffle(order.begin(), order.end(), order_rng());
  for (uint32_t linear : order) run_block(linear, running.threads_per_block);
  running.kernel = nullptr;
  return !g_block.failed;
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
unsigned long long atomicMax(unsigned long long* a, unsigned long long v) {
  return sim::atomic_update(a, [v](unsigned long long o) { return std::max(o, v); });
}
unsigned long long atomicMin(unsigned long long* a, unsigned long long v) {
  return sim::atomic_update(a, [v](unsigned long long o) { return std::min(o, v); });
}
int atomicExch(int* a, int v) { return sim::atomic_update(a, [v](int) { return v; }); }
int atomicCAS(int* a, int c, int v) { return sim::atomic_update(a, [c, v](int o) { return o == c ? v : o; }); }
unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
  return sim::atomic_update(a, [c, v](unsigned long long o) { return o == c ? v : o; });
}
