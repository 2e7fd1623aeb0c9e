// Errors and thread counts of libplora_cpu.
#include <dlfcn.h>
#include <omp.h>

#include "../common/errors.h"
#include "plora/cpu.h"

using namespace plora;

extern "C" {

const char* plora_cpu_last_error(void) { return last_error().c_str(); }

int plora_cpu_num_threads(void) { return omp_get_max_threads(); }

int plora_cpu_blas_threads(void) {
  // OpenBLAS is loaded by the JVM beside us, not linked: look it up without loading it.
  void* blas = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
  if (blas == nullptr) return -1;
  using Getter = int (*)(void);
  auto get = reinterpret_cast<Getter>(dlsym(blas, "openblas_get_num_threads"));
  int threads = get != nullptr ? get() : -1;
  dlclose(blas);
  return threads;
}

}  // extern "C"
