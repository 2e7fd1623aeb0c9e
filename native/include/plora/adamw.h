/* The AdamW element update, shared by the host and device kernels (PyTorch's AdamW). */
#ifndef PLORA_ADAMW_H
#define PLORA_ADAMW_H

#include <math.h>

#include "plora/numerics.h"

namespace plora {

struct AdamwHyper {
  float lr, beta1, beta2, eps, weight_decay, grad_scale, bias_correction1, bias_correction2;
};

/* Updates p, m, v for one element with learning rate lr_i and returns the new p. */
PLORA_HD float adamw_update(float* p, float* m, float* v, float grad, float lr_i, const AdamwHyper& h) {
  const float g = grad * h.grad_scale;
  const float mi = h.beta1 * *m + (1.0f - h.beta1) * g;
  const float vi = h.beta2 * *v + (1.0f - h.beta2) * g * g;
  *m = mi;
  *v = vi;
  const float denom = sqrtf(vi / h.bias_correction2) + h.eps;
  const float pi = *p * (1.0f - lr_i * h.weight_decay) - (lr_i / h.bias_correction1) * mi / denom;
  *p = pi;
  return pi;
}

}  // namespace plora

#endif
