// libplora_cuda built without nvcc: the runtime below, and each kernel entry point (generated from
// the family headers by cmake/PloraCudaStub.cmake) reporting that CUDA was not compiled.
#include "../common/errors.h"
#include "plora/cuda.h"

namespace plora {
int stub_not_compiled() {
  return fail(PLORA_ERR_NOT_COMPILED, "libplora_cuda was built without nvcc: no CUDA kernels");
}
}  // namespace plora

extern "C" {

int plora_cuda_compiled(void) { return 0; }
const char* plora_cuda_architectures(void) { return ""; }
const char* plora_cuda_last_error(void) { return plora::last_error().c_str(); }

}  // extern "C"
