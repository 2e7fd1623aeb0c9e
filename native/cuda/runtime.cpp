// ABI constants of libplora_cuda: host code, built into the real library and into the stub.
#include "../common/abi_constants.h"
#include "plora/cuda.h"

extern "C" {

int64_t plora_cuda_constant(const char* name) {
  if (name != nullptr && std::strcmp(name, "PLORA_CUDA_SCRATCH_BYTES") == 0) return PLORA_CUDA_SCRATCH_BYTES;
  return plora::abi_constant(name);
}

}  // extern "C"
