// libplora_cuda built without nvcc: the same symbols, each reporting that CUDA was not compiled.
#include "../common/errors.h"
#include "plora/cuda.h"

using namespace plora;

namespace {
int not_compiled() {
  return fail(PLORA_ERR_NOT_COMPILED, "libplora_cuda was built without nvcc: no CUDA kernels");
}
}  // namespace

extern "C" {

int plora_cuda_compiled(void) { return 0; }
const char* plora_cuda_architectures(void) { return ""; }
const char* plora_cuda_last_error(void) { return last_error().c_str(); }

int plora_cuda_copy(const void*, int, int64_t, void*, int, int64_t, int64_t, int64_t, void*) {
  return not_compiled();
}
int plora_cuda_fill(void*, int, int64_t, int64_t, int64_t, float, void*) { return not_compiled(); }
int plora_cuda_dropout_mask(void*, int, int64_t, int64_t, int64_t, float, uint64_t, uint64_t, void*) {
  return not_compiled();
}
int plora_cuda_shrink(const void*, int64_t, const void*, int64_t, void*, int64_t, int, int64_t,
                      int64_t, int64_t, float, float, uint64_t, uint64_t, void*) {
  return not_compiled();
}

int plora_cuda_dy_pass(const void*, int64_t, const void*, int64_t, const void*, int64_t, void*,
                       int64_t, float*, int64_t, int, int64_t, int64_t, int64_t, float, void*) {
  return not_compiled();
}
int plora_cuda_da_dx(const void*, int64_t, const void*, int64_t, const void*, int64_t, float*,
                     int64_t, void*, int64_t, int, int64_t, int64_t, int64_t, float, uint64_t,
                     uint64_t, void*) {
  return not_compiled();
}
int plora_cuda_axpby(float, const void*, int, int64_t, float, void*, int, int64_t, int64_t, int64_t,
                     void*) {
  return not_compiled();
}
int plora_cuda_add_bias(void*, int, int64_t, int64_t, int64_t, const void*, int, void*) {
  return not_compiled();
}
int plora_cuda_random_fill(void*, int, int64_t, int64_t, int64_t, int, float, float, uint64_t,
                           uint64_t, void*) {
  return not_compiled();
}
int plora_cuda_count_nonfinite(const void*, int, int64_t, int64_t, int64_t, void*, int64_t*, void*) {
  return not_compiled();
}

int plora_cuda_merge(void*, int, int64_t, void*, int64_t, void*, int64_t, int, int64_t, int64_t, int64_t, float,
                     int, uint64_t, uint64_t, float, float, void*) {
  return not_compiled();
}
int plora_cuda_adamw(int, const int64_t*, const int64_t*, const int64_t*, const int64_t*, const int64_t*,
                     const int64_t*, const int64_t*, const int64_t*, const float*, int, float, float, float,
                     float, float, float, float, float, void*, int64_t, void*) {
  return not_compiled();
}
int plora_cuda_sum_squares(const void*, int, int64_t, int64_t, int64_t, double*, void*, void*) {
  return not_compiled();
}
int plora_cuda_sum_squares_many(int, const int64_t*, const int*, const int64_t*, const int64_t*, const int64_t*,
                                double*, void*, void*) {
  return not_compiled();
}
int plora_cuda_gelu(const void*, int64_t, void*, int64_t, int, int64_t, int64_t, void*) { return not_compiled(); }
int plora_cuda_gelu_backward(const void*, int64_t, const void*, int64_t, void*, int64_t, int, int64_t, int64_t,
                             void*) {
  return not_compiled();
}
int plora_cuda_mse(const void*, int64_t, const void*, int64_t, int, int64_t, int64_t, double*, void*, int64_t,
                   void*, void*) {
  return not_compiled();
}
int plora_cuda_softmax_xent(const void*, int64_t, int, int64_t, int64_t, const float*, double*, void*, int64_t,
                            int64_t*, void*, void*) {
  return not_compiled();
}

}  // extern "C"
