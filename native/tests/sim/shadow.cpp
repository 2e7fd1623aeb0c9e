// Device memory, shared memory and the shadow cells of the race checker (see shadow.h).
#include "shadow.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SIM_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SIM_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SIM_POISON(p, n) ((void)(p), (void)(n))
#define SIM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifndef PLORA_SIM_SHADOW
#define PLORA_SIM_SHADOW 1
#endif

namespace sim {

bool shadow_checks() { return PLORA_SIM_SHADOW != 0; }

#if defined(__SANITIZE_ADDRESS__)
namespace {
// AddressSanitizer's report names the host stack; this says which simulated thread it was.
void asan_report(const char*) {
  if (running.kernel != nullptr)
    std::fprintf(stderr, "simulator: the AddressSanitizer report above is from kernel %s, block %s, thread %s\n",
                 running.kernel, coords(running.block, grid_dim).c_str(), coords(running.thread, block_dim).c_str());
}
const bool asan_callback_set = (__asan_set_error_report_callback(asan_report), true);
}  // namespace
#endif

namespace {

constexpr uint32_t kManyBlocks = 0xffffffffu;

// The shadow of one byte. Thread ids are 1 + the thread's linear index in the launch; 0 is none.
struct Cell {
  uint32_t launch;         // launch (or, in shared memory, block) of the records below
  uint32_t writer;         // last write in that launch
  uint32_t reader;         // last read
  uint32_t write_phase, read_phase;
  uint32_t earlier_block;  // 1 + block of the readers before the last one, kManyBlocks, or 0
  uint32_t earlier_phase;  // the latest phase among those readers
  uint8_t written;         // anything ever wrote this byte
  uint8_t atomic;          // the last write was an atomic
};

struct Allocation {
  uintptr_t begin = 0;
  size_t bytes = 0;
  uint32_t id = 0;
  bool freed = false;
  std::vector<Cell> cells;  // one per byte, in the checked build
};

constexpr size_t kRedZone = 256;  // between allocations, and their alignment
constexpr size_t kArenaBytes = size_t(1) << 36;

struct Memory {
  char* arena = nullptr;
  size_t top = kRedZone;
  uint32_t next_id = 1;
  size_t live = 0, live_bytes = 0;
  std::map<uintptr_t, Allocation> table;  // by begin; freed ones stay until the arena is reset
  Allocation* last = nullptr;

  Memory() {
    void* m = mmap(nullptr, kArenaBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      std::perror("simulator: device memory");
      std::abort();
    }
    arena = static_cast<char*>(m);
    SIM_POISON(arena, kRedZone);  // the red zone before the first allocation
  }

  // The allocation whose [begin - red zone, end + red zone) holds a, or nullptr.
  Allocation* near(uintptr_t a) {
    if (last != nullptr && a >= last->begin && a < last->begin + last->bytes) return last;
    auto it = table.upper_bound(a);
    if (it == table.begin()) return nullptr;
    --it;
    Allocation* found = &it->second;
    if (a < found->begin + found->bytes + kRedZone) return found;
    if (++it != table.end() && it->second.begin - a <= kRedZone) return &it->second;
    return found;
  }
};

Memory& memory() {
  static Memory* m = new Memory();  // never destroyed: device memory outlives static destructors
  return *m;
}

// Shared memory of the running block: a bump arena, with the declarations it holds.
struct Shared {
  static constexpr size_t kLimit = 48 * 1024;
  alignas(16) char bytes[kLimit];
  Cell cells[kLimit];
  size_t used = 0;
  uint32_t epoch = 0;  // one per block: the cells' launch field
  struct Decl {
    const void* key;
    size_t offset, bytes;
    const char* name;
  };
  std::vector<Decl> decls;
};

Shared& shared() {
  static Shared* s = [] {
    Shared* fresh = new Shared();
    SIM_POISON(fresh->bytes, Shared::kLimit);
    return fresh;
  }();
  return *s;
}

std::string thread_name(uint32_t id) {  // id: 1 + linear thread index in the launch
  const uint32_t t = id - 1, tpb = running.threads_per_block;
  return "thread " + coords(t % tpb, block_dim) + " of block " + coords(t / tpb, grid_dim);
}

std::string where(uintptr_t a) {
  char text[160];
  Shared& s = shared();
  const uintptr_t base = reinterpret_cast<uintptr_t>(s.bytes);
  if (a - base < s.used) {
    for (const Shared::Decl& d : s.decls)
      if (a - base - d.offset < d.bytes) {
        std::snprintf(text, sizeof text, "shared %s + %zu", d.name, static_cast<size_t>(a - base - d.offset));
        return text;
      }
  }
  Allocation* al = memory().near(a);
  if (al == nullptr) {
    std::snprintf(text, sizeof text, "%#zx", static_cast<size_t>(a));
  } else if (a < al->begin) {
    std::snprintf(text, sizeof text, "%zu bytes before allocation #%u (%zu bytes)", static_cast<size_t>(al->begin - a),
                  al->id, al->bytes);
  } else if (a >= al->begin + al->bytes) {
    std::snprintf(text, sizeof text, "%zu bytes past the end of allocation #%u (%zu bytes)",
                  static_cast<size_t>(a - al->begin - al->bytes), al->id, al->bytes);
  } else {
    std::snprintf(text, sizeof text, "allocation #%u (%zu bytes) + %zu%s", al->id, al->bytes,
                  static_cast<size_t>(a - al->begin), al->freed ? ", freed" : "");
  }
  return text;
}

const char* verb(Access kind) { return kind == Access::read ? "reads" : kind == Access::write ? "writes" : "atomically updates"; }

// Checks one access to byte a (shadow c) by the running thread and records it. Returns false
// when it made a finding (one finding per access is enough).
bool check(Cell& c, uint32_t epoch, uintptr_t a, Access kind, bool in_shared) {
  const uint32_t me = running.block * running.threads_per_block + running.thread + 1;
  const uint32_t tpb = running.threads_per_block, block = running.block, phase = running.phase;
  if (c.launch != epoch) {
    c.launch = epoch;
    c.writer = c.reader = c.earlier_block = 0;
    c.atomic = 0;
    if (in_shared) c.written = 0;
  }
  auto block_of = [tpb](uint32_t id) { return (id - 1) / tpb; };
  auto unordered = [&](uint32_t other, uint32_t other_phase) {
    return other != 0 && other != me && (block_of(other) != block || other_phase == phase);
  };
  const char* scope_note = in_shared ? " with no __syncthreads() between" : "";
  bool clean = true;
  if (kind == Access::read) {
    if (!c.written) {
      report(Check::uninitialized, std::string("reads ") + where(a) + ", which nothing wrote");
      clean = false;
    } else if (unordered(c.writer, c.write_phase)) {
      const bool other_block = block_of(c.writer) != block;
      report(c.atomic ? Check::atomic_race : Check::race,
             std::string("reads ") + where(a) + (c.atomic ? ", atomically updated by " : ", written by ") +
                 thread_name(c.writer) + (other_block ? " (another block of the launch)" : scope_note));
      clean = false;
    }
    if (c.reader != 0 && c.reader != me) {  // the previous reader joins the earlier ones
      const uint32_t b = block_of(c.reader) + 1;
      if (c.earlier_block == 0) {
        c.earlier_block = b;
        c.earlier_phase = c.read_phase;
      } else {
        if (c.earlier_block != b) c.earlier_block = kManyBlocks;
        c.earlier_phase = std::max(c.earlier_phase, c.read_phase);
      }
    }
    c.reader = me;
    c.read_phase = phase;
    return clean;
  }
  const bool atomic = kind == Access::atomic;
  if (unordered(c.writer, c.write_phase) && !(atomic && c.atomic)) {
    const bool other_block = block_of(c.writer) != block;
    report(atomic != (c.atomic != 0) ? Check::atomic_race : Check::race,
           std::string(verb(kind)) + " " + where(a) + (c.atomic ? ", atomically updated by " : ", written by ") +
               thread_name(c.writer) + (other_block ? " (another block of the launch)" : scope_note));
    clean = false;
  } else if (unordered(c.reader, c.read_phase)) {
    const bool other_block = block_of(c.reader) != block;
    report(atomic ? Check::atomic_race : Check::race,
           std::string(verb(kind)) + " " + where(a) + ", read by " + thread_name(c.reader) +
               (other_block ? " (another block of the launch)" : scope_note));
    clean = false;
  } else if (c.earlier_block != 0 && (c.earlier_block != block + 1 || c.earlier_phase == phase)) {
    report(atomic ? Check::atomic_race : Check::race,
           std::string(verb(kind)) + " " + where(a) + ", read before by other threads" +
               (c.earlier_block != block + 1 ? " of another block of the launch" : scope_note));
    clean = false;
  }
  c.writer = me;
  c.write_phase = phase;
  c.atomic = atomic;
  c.written = 1;
  return clean;
}

}  // namespace

void access(const void* p, size_t bytes, Access kind) {
  if (!PLORA_SIM_SHADOW) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Memory& m = memory();
  Shared& s = shared();
  const uintptr_t shared_base = reinterpret_cast<uintptr_t>(s.bytes);
  if (a - shared_base < Shared::kLimit) {
    if (running.kernel == nullptr) return;
    if (a + bytes - shared_base > s.used) {
      report(Check::out_of_bounds, std::string(verb(kind)) + " " + std::to_string(bytes) +
                                       " bytes of shared memory past the block's declarations");
      return;
    }
    for (size_t i = 0; i < bytes; ++i)
      if (!check(s.cells[a - shared_base + i], s.epoch, a + i, kind, true)) break;
    return;
  }
  if (a - reinterpret_cast<uintptr_t>(m.arena) >= kArenaBytes) return;  // host memory, a fiber's stack
  if (running.kernel == nullptr) {
    report(Check::host_access, std::string("host code ") + verb(kind) + " device memory at " + where(a));
    return;
  }
  Allocation* al = m.near(a);
  if (al == nullptr || al->freed || a < al->begin || a + bytes > al->begin + al->bytes) {
    report(Check::out_of_bounds, std::string(verb(kind)) + " " + std::to_string(bytes) + " bytes at " + where(a));
    return;
  }
  m.last = al;
  const uint32_t epoch = running.launch;
  for (size_t i = 0; i < bytes; ++i)
    if (!check(al->cells[a - al->begin + i], epoch, a + i, kind, false)) break;
}

void* device_alloc(size_t bytes) {
  Memory& m = memory();
  const size_t rounded = (std::max<size_t>(bytes, 1) + kRedZone - 1) / kRedZone * kRedZone;
  if (m.top + rounded + kRedZone > kArenaBytes) return nullptr;
  Allocation al;
  al.begin = reinterpret_cast<uintptr_t>(m.arena + m.top);
  al.bytes = bytes;
  al.id = m.next_id++;
  if (PLORA_SIM_SHADOW) al.cells.assign(bytes, Cell{});
  m.top += rounded + kRedZone;
  ++m.live;
  m.live_bytes += bytes;
  char* p = reinterpret_cast<char*>(al.begin);
  SIM_UNPOISON(p, bytes);
  SIM_POISON(p + bytes, rounded + kRedZone - bytes);  // the red zone after it
  std::memset(p, 0xa5, bytes);  // garbage, as fresh device memory is (the shadow knows it is unwritten)
  m.table.emplace(al.begin, std::move(al));
  return p;
}

bool device_free(void* p) {
  Memory& m = memory();
  auto it = m.table.find(reinterpret_cast<uintptr_t>(p));
  if (it == m.table.end() || it->second.freed) return false;
  Allocation& al = it->second;
  al.freed = true;
  std::vector<Cell>().swap(al.cells);
  SIM_POISON(p, al.bytes);
  --m.live;
  m.live_bytes -= al.bytes;
  m.last = nullptr;
  if (m.live == 0) {  // nothing left: the arena starts over, its pages go back to the system
    madvise(m.arena, m.top, MADV_DONTNEED);
    m.table.clear();
    m.top = kRedZone;
  }
  return true;
}

bool is_device(const void* p) {
  return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(memory().arena) < kArenaBytes;
}

bool device_range(const void* p, size_t bytes, const char* what) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  Allocation* al = memory().near(a);
  if (al != nullptr && !al->freed && a >= al->begin && a + bytes <= al->begin + al->bytes) return true;
  report(Check::out_of_bounds, std::string(what) + " of " + std::to_string(bytes) + " bytes at " + where(a) +
                                   " leaves the allocation");
  return false;
}

void host_wrote(void* dst, size_t bytes) {
  if (!PLORA_SIM_SHADOW || bytes == 0) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(dst);
  Allocation* al = memory().near(a);
  for (size_t i = 0; i < bytes; ++i) al->cells[a - al->begin + i].written = 1;
}

void device_copied(void* dst, const void* src, size_t bytes) {
  if (!PLORA_SIM_SHADOW || bytes == 0) return;
  const uintptr_t d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
  Allocation* ad = memory().near(d);
  Allocation* as = memory().near(s);
  for (size_t i = 0; i < bytes; ++i) ad->cells[d - ad->begin + i].written = as->cells[s - as->begin + i].written;
}

size_t device_bytes_in_use() { return memory().live_bytes; }

void shared_reset() {
  Shared& s = shared();
  SIM_POISON(s.bytes, s.used);
  s.used = 0;
  s.decls.clear();
  ++s.epoch;
}

void* shared_alloc(const void* key, size_t bytes, size_t align, const char* name) {
  Shared& s = shared();
  for (const Shared::Decl& d : s.decls)
    if (d.key == key) return s.bytes + d.offset;
  const size_t offset = (s.used + align - 1) / align * align;
  if (offset + bytes > Shared::kLimit) {
    report(Check::shared_memory, "declares " + std::to_string(offset + bytes) +
                                     " bytes of static shared memory (__shared__ " + name +
                                     "); a block has at most 48 KiB");
    return nullptr;
  }
  s.decls.push_back({key, offset, bytes, name});
  s.used = offset + bytes;
  SIM_UNPOISON(s.bytes + offset, bytes);
  std::memset(s.bytes + offset, 0xa5, bytes);
  return s.bytes + offset;
}

}  // namespace sim

// The entry points of the compiler's ThreadSanitizer instrumentation of the kernel sources (with
// the signatures of GCC's built-in declarations).
extern "C" {
void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit(void*) {}
void __tsan_vptr_update(void*, void*) {}
void __tsan_vptr_read(void*) {}
#define SIM_TSAN_SIZE(n)                                                                                  \
  void __tsan_read##n(void* p) { sim::access(p, n, sim::Access::read); }                               \
  void __tsan_write##n(void* p) { sim::access(p, n, sim::Access::write); }                             \
  void __tsan_unaligned_read##n(void* p) { sim::access(p, n, sim::Access::read); }                     \
  void __tsan_unaligned_write##n(void* p) { sim::access(p, n, sim::Access::write); }                   \
  void __tsan_volatile_read##n(void* p) { sim::access(p, n, sim::Access::read); }                      \
  void __tsan_volatile_write##n(void* p) { sim::access(p, n, sim::Access::write); }
SIM_TSAN_SIZE(1)
SIM_TSAN_SIZE(2)
SIM_TSAN_SIZE(4)
SIM_TSAN_SIZE(8)
SIM_TSAN_SIZE(16)
#if defined(__clang__)  // Clang routes the kernels' memcpy / memset through these
void* __tsan_memcpy(void* d, const void* s, unsigned long n) {
  sim::access(s, n, sim::Access::read);
  sim::access(d, n, sim::Access::write);
  return std::memcpy(d, s, n);
}
void* __tsan_memmove(void* d, const void* s, unsigned long n) {
  sim::access(s, n, sim::Access::read);
  sim::access(d, n, sim::Access::write);
  return std::memmove(d, s, n);
}
void* __tsan_memset(void* d, int v, unsigned long n) {
  sim::access(d, n, sim::Access::write);
  return std::memset(d, v, n);
}
#endif
void __tsan_read_range(void* p, long n) { sim::access(p, static_cast<size_t>(n), sim::Access::read); }
void __tsan_write_range(void* p, long n) { sim::access(p, static_cast<size_t>(n), sim::Access::write); }
}
