/* The constants of the C ABI by name, for plora_cpu_constant and plora_cuda_constant: the Java
 * side asks for them at load and refuses to run when its own codes differ. */
#ifndef PLORA_COMMON_ABI_CONSTANTS_H
#define PLORA_COMMON_ABI_CONSTANTS_H

#include <cstdint>
#include <cstring>

#include "plora/plora.h"

namespace plora {

struct AbiConstant {
  const char* name;
  int64_t value;
};

#define PLORA_ABI_CONSTANT(c) \
  AbiConstant { #c, static_cast<int64_t>(c) }

inline constexpr AbiConstant kAbiConstants[] = {
    PLORA_ABI_CONSTANT(PLORA_F32),          PLORA_ABI_CONSTANT(PLORA_BF16),
    PLORA_ABI_CONSTANT(PLORA_F16),          PLORA_ABI_CONSTANT(PLORA_I32),
    PLORA_ABI_CONSTANT(PLORA_ROUND_NEAREST), PLORA_ABI_CONSTANT(PLORA_ROUND_STOCHASTIC),
    PLORA_ABI_CONSTANT(PLORA_UNIFORM),      PLORA_ABI_CONSTANT(PLORA_NORMAL),
};

#undef PLORA_ABI_CONSTANT

/* The value of the constant called `name`, or -1 when there is none. */
inline int64_t abi_constant(const char* name) {
  if (name == nullptr) return -1;
  for (const AbiConstant& c : kAbiConstants)
    if (std::strcmp(c.name, name) == 0) return c.value;
  return -1;
}

}  // namespace plora

#endif
