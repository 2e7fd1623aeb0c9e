// Simulated device memory and its shadow: the race checker of the CUDA simulator. Every byte of
// device and shared memory has a shadow cell that remembers, for the current launch, the last
// thread that wrote it and the threads that read it, with the number of barriers their block had
// passed; a new access that another thread's access is not ordered with (another block, or the
// same block with no __syncthreads() between), one of them writing, is a race. The cell also
// remembers whether anything ever wrote the byte. Accesses reach the checker through the
// compiler's ThreadSanitizer instrumentation of the kernel sources (-fsanitize=thread without its
// runtime: shadow.cpp defines the __tsan_* entry points), the atomics through scheduler.cpp.
#ifndef PLORA_SIM_SHADOW_H
#define PLORA_SIM_SHADOW_H

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "sim.h"

namespace sim {

// What runs now; the scheduler (scheduler.cpp) keeps it current.
struct Running {
  const char* kernel = nullptr;  // nullptr: host code
  uint32_t launch = 0;           // 1, 2, ... for each launch executed
  uint32_t block = 0;            // linear index of the running block
  uint32_t thread = 0;           // linear index of the running thread in its block
  uint32_t threads_per_block = 1;
  uint32_t phase = 0;            // barriers the running block has passed
};
extern Running running;

// Runs every block of a launch (scheduler.cpp); false when a block had to be abandoned.
bool run_grid(const char* kernel, dim3 grid, dim3 block, const std::function<void()>& body);

// Records a finding about the running kernel, block and thread (or host code) and prints it.
void report(Check check, const std::string& what);

// "(x,y,z)" of a linear index in a grid or block of the given dimensions.
std::string coords(uint32_t linear, dim3 dims);

enum class Access : uint8_t { read, write, atomic };

// A kernel's (or host code's) access to [p, p + bytes): checked when p is device or shared memory.
void access(const void* p, size_t bytes, Access kind);

// Device memory: allocations with red zones between them, from one reserved range.
void* device_alloc(size_t bytes);
bool device_free(void* p);  // false when p is not the start of a live allocation
bool is_device(const void* p);
// Whether [p, p + bytes) lies in one live allocation; reports an out-of-bounds finding if not,
// naming `what` (a runtime call).
bool device_range(const void* p, size_t bytes, const char* what);
void host_wrote(void* dst, size_t bytes);                       // a memset or a copy from the host
void device_copied(void* dst, const void* src, size_t bytes);  // dst is written where src was
size_t device_bytes_in_use();

// Shared memory of the running block.
void shared_reset();
// nullptr (and a finding) when the block would need more than a device's 48 KiB.
void* shared_alloc(const void* key, size_t bytes, size_t align, const char* name);

}  // namespace sim

#endif
