// What a test asks of the CUDA simulator: the findings of its checks (races, reads of unwritten
// memory, out-of-bounds accesses, divergent barriers and shuffles, refused launches) and the
// kernels it ran. Each finding is also printed on stderr when it is made.
#ifndef PLORA_SIM_SIM_H
#define PLORA_SIM_SIM_H

#include <cstdint>
#include <string>
#include <vector>

#include "cuda_runtime.h"

namespace sim {

enum class Check {
  race,            // two threads of a launch, one writing, unordered by a barrier
  atomic_race,     // an atomic and a plain access to one address, unordered
  uninitialized,   // a kernel read memory that nothing wrote
  out_of_bounds,   // an access outside every allocation (or freed memory), a copy past one
  barrier,         // __syncthreads reached by part of a block, or at different places
  shuffle,         // a warp collective whose mask does not match the lanes that reach it
  shared_memory,   // a block asked for more static shared memory than a device has
  host_access,     // host code dereferenced device memory
};

const char* check_name(Check check);

struct Finding {
  Check check;
  std::string kernel;  // "" outside a kernel
  uint3 block, thread;
  std::string message;  // the whole report, kernel, block and thread included
};

// The findings since the last call, which clears them.
std::vector<Finding> take_findings();

// Kernels launched so far: launches, and launches whose grid a cap held below what the shape
// wanted (so their grid-stride loops turned more than once).
struct KernelStats {
  std::string name;
  int64_t launches = 0, capped = 0;
};
std::vector<KernelStats> kernel_stats();

// The settings of this run, from the environment: PLORA_SIM_LAUNCH_CAP (0: none) and
// PLORA_SIM_SHUFFLE (0: threads and blocks in order; otherwise the seed of a random order).
int64_t launch_cap_setting();
uint64_t shuffle_seed();

// Whether accesses are checked against the shadow memory (false in the AddressSanitizer build).
bool shadow_checks();

}  // namespace sim

#endif
