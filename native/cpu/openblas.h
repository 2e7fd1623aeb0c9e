// The OpenBLAS that the JVM loaded beside libplora_cpu (the JavaCPP preset's libopenblas.so.0):
// we never link or load it ourselves, so that the process holds one BLAS with one thread pool.
#ifndef PLORA_CPU_OPENBLAS_H
#define PLORA_CPU_OPENBLAS_H

#include <dlfcn.h>

namespace plora {

// The address of `name` in the loaded OpenBLAS, or nullptr when OpenBLAS is not loaded or
// lacks it. Looked up without loading anything.
inline void* openblas_symbol(const char* name) {
  void* blas = dlopen("libopenblas.so.0", RTLD_LAZY | RTLD_NOLOAD);
  if (blas == nullptr) return nullptr;
  void* symbol = dlsym(blas, name);
  dlclose(blas);  // the JVM's own handle keeps it loaded
  return symbol;
}

}  // namespace plora

#endif
