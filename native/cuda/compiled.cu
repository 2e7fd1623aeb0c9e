// The runtime entry points of the compiled libplora_cuda (the stub's are in stub.cpp).
#include "../common/errors.h"
#include "plora/cuda.h"

using namespace plora;

extern "C" {

int plora_cuda_compiled(void) { return 1; }

const char* plora_cuda_architectures(void) { return PLORA_CUDA_ARCHITECTURES; }

const char* plora_cuda_last_error(void) { return last_error().c_str(); }

}  // extern "C"
