// Fused multi-tensor AdamW on the host (element update in plora/adamw.h, shared with CUDA).
#include <omp.h>

#include "../common/contracts.h"
#include "parallel.h"
#include "plora/adamw.h"
#include "plora/adamw_kernels.h"

using namespace plora;

extern "C" {

int plora_cpu_adamw(int count, const int64_t* params, const int64_t* grads, const int64_t* m,
                    const int64_t* v, const int64_t* copies, const int64_t* copy_ld, const int64_t* rows,
                    const int64_t* cols, const float* lr_scale, int copy_dtype, float lr, float beta1,
                    float beta2, float eps, float weight_decay, float grad_scale, float bias_correction1,
                    float bias_correction2) {
  PLORA_TRY(check_adamw_args(count, params, grads, m, v, copies, copy_ld, rows, cols, lr_scale, copy_dtype));
  if (count == 0) return ok();
  const AdamwHyper h{lr, beta1, beta2, eps, weight_decay, grad_scale, bias_correction1, bias_correction2};
  int64_t elements = 0;
  for (int i = 0; i < count; ++i) elements += rows[i] * cols[i];
#pragma omp parallel if (parallel_worth(elements))
  for (int i = 0; i < count; ++i) {
    const float lr_i = lr * lr_scale[i];
    const int64_t c = cols[i];
    void* copy = reinterpret_cast<void*>(copies[i]);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows[i]; ++row) {
      // Row by row with restrict pointers, so the element update vectorises.
      float* __restrict p = reinterpret_cast<float*>(params[i]) + row * c;
      const float* __restrict g = reinterpret_cast<const float*>(grads[i]) + row * c;
      float* __restrict mi = reinterpret_cast<float*>(m[i]) + row * c;
      float* __restrict vi = reinterpret_cast<float*>(v[i]) + row * c;
      for (int64_t e = 0; e < c; ++e) adamw_update(p + e, mi + e, vi + e, g[e], lr_i, h);
      if (copy != nullptr) {
        char* out = static_cast<char*>(copy) + row * copy_ld[i] * dtype_size(copy_dtype);
        if (copy_dtype == PLORA_BF16) {
          uint16_t* o = reinterpret_cast<uint16_t*>(out);
          for (int64_t e = 0; e < c; ++e) o[e] = f32_to_bf16(p[e]);
        } else {
          for (int64_t e = 0; e < c; ++e) store_f32(out, copy_dtype, e, p[e]);
        }
      }
    }
  }
  return ok();
}

}  // extern "C"
