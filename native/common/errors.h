/* The per-thread "last error" of one kernel library. Each library compiles this header with
 * hidden visibility, so the CPU and CUDA libraries keep separate messages. */
#ifndef PLORA_COMMON_ERRORS_H
#define PLORA_COMMON_ERRORS_H

#include <cstdarg>
#include <cstdio>
#include <string>

#include "plora/plora.h"

namespace plora {

inline std::string& last_error() {
  static thread_local std::string message;
  return message;
}

/* Records a printf-style message and returns the status, for `return fail(...)`. */
inline int fail(int status, const char* format, ...) {
  char buffer[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buffer, sizeof buffer, format, args);
  va_end(args);
  last_error() = buffer;
  return status;
}

inline int ok() {
  last_error().clear();
  return PLORA_OK;
}

}  // namespace plora

#endif
