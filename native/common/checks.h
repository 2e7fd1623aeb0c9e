/* Argument checks shared by the C++ and CUDA entry points. The Java side validates first and
 * names the tensors; these are the last line of defence for direct C callers. */
#ifndef PLORA_COMMON_CHECKS_H
#define PLORA_COMMON_CHECKS_H

#include <cstdint>

#include "errors.h"
#include "plora/numerics.h"

namespace plora {

inline int check_dtype(const char* name, int dtype) {
  if (!dtype_valid(dtype)) return fail(PLORA_ERR_INVALID, "%s: unknown dtype code %d", name, dtype);
  return PLORA_OK;
}

inline int check_matrix(const char* name, const void* ptr, int64_t ld, int64_t rows,
                        int64_t cols) {
  if (rows < 0 || cols < 0)
    return fail(PLORA_ERR_INVALID, "%s: negative shape [%lld,%lld]", name, (long long)rows,
                (long long)cols);
  if (rows > 0 && ld < cols)
    return fail(PLORA_ERR_INVALID, "%s: leading dimension %lld < cols %lld", name, (long long)ld,
                (long long)cols);
  if (rows > 0 && cols > 0 && ptr == nullptr)
    return fail(PLORA_ERR_INVALID, "%s: null pointer for a [%lld,%lld] matrix", name,
                (long long)rows, (long long)cols);
  return PLORA_OK;
}

inline int check_dropout(float p) {
  if (!(p >= 0.0f && p < 1.0f)) return fail(PLORA_ERR_INVALID, "dropout p=%g not in [0,1)", p);
  return PLORA_OK;
}

}  // namespace plora

#define PLORA_TRY(expr)              \
  do {                               \
    int plora_status_ = (expr);      \
    if (plora_status_ != PLORA_OK) return plora_status_; \
  } while (0)

#endif
