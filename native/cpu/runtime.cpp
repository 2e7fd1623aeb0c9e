// Errors, thread counts, host memory and ABI constants of libplora_cpu.
#include <omp.h>

#include <cstdlib>

#include "../common/abi_constants.h"
#include "../common/errors.h"
#include "openblas.h"
#include "plora/cpu.h"

using namespace plora;

extern "C" {

const char* plora_cpu_last_error(void) { return last_error().c_str(); }

int64_t plora_cpu_constant(const char* name) { return abi_constant(name); }

int plora_cpu_num_threads(void) { return omp_get_max_threads(); }

int plora_cpu_supported(void) {
  // This file is compiled for the baseline ISA; the kernel files for x86-64-v3.
  if (__builtin_cpu_supports("x86-64-v3")) return ok();
  return fail(PLORA_ERR_INVALID,
              "this CPU lacks the x86-64-v3 instructions (AVX2, FMA, BMI2, F16C) that the host kernels "
              "were compiled for; rebuild with mvn -Dplora.cpu.arch=x86-64-v2 (CMake: -DPLORA_CPU_ARCH=x86-64-v2)");
}

int plora_cpu_blas_threads(void) {
  using Getter = int (*)(void);
  auto get = reinterpret_cast<Getter>(openblas_symbol("openblas_get_num_threads"));
  return get != nullptr ? get() : -1;
}

void* plora_cpu_alloc(int64_t bytes) {
  if (bytes <= 0) {
    fail(PLORA_ERR_INVALID, "allocation of %lld bytes", (long long)bytes);
    return nullptr;
  }
  // aligned_alloc needs a size that is a multiple of the alignment.
  const int64_t alignment = 64;
  int64_t rounded = (bytes + alignment - 1) / alignment * alignment;
  void* ptr = std::aligned_alloc(alignment, static_cast<size_t>(rounded));
  if (ptr == nullptr) fail(PLORA_ERR_NO_MEMORY, "out of host memory allocating %lld bytes", (long long)bytes);
  return ptr;
}

void plora_cpu_free(void* ptr) { std::free(ptr); }

}  // extern "C"
