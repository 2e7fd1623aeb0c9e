// Helpers shared by the host kernels: fp32 row access with dropout, and 8-wide float vectors.
#ifndef PLORA_CPU_ROWS_H
#define PLORA_CPU_ROWS_H

#include <cstdint>
#include <vector>

#include "plora/numerics.h"
#include "plora/philox.h"

namespace plora {

// Eight floats: one AVX2 register in the x86-64-v3 build, a pair of SSE registers otherwise.
typedef float v8 __attribute__((vector_size(32)));

inline v8 v8_load(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline void v8_store(float* p, v8 v) { __builtin_memcpy(p, &v, sizeof v); }

inline v8 v8_splat(float f) { return v8{f, f, f, f, f, f, f, f}; }

inline int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// The dropout of one launch: element i*k + t of stream (seed, stream) is kept with factor
// 1/(1-p) or dropped.
struct DropoutKeys {
  uint32_t threshold;
  float keep_scale;
  uint64_t seed;
  uint64_t stream;

  DropoutKeys(float p, uint64_t seed_, uint64_t stream_)
      : threshold(dropout_threshold(p)), keep_scale(1.0f / (1.0f - p)), seed(seed_), stream(stream_) {}

  bool active() const { return threshold != 0u; }

  float factor(int64_t index) const {
    return dropout_keep(seed, stream, static_cast<uint64_t>(index), threshold) ? keep_scale : 0.0f;
  }
};

// Row i of a [m,k] matrix as fp32 with dropout applied. Returns the row itself when it is F32 and
// no dropout is active; otherwise fills `buffer` (k floats). When `factors` is given it also
// receives each element's dropout factor (1 without dropout).
inline const float* dropped_row(const void* x, int dtype, int64_t ld, int64_t i, int64_t k,
                                const DropoutKeys& dropout, float* buffer, float* factors = nullptr) {
  const char* row = static_cast<const char*>(x) + i * ld * dtype_size(dtype);
  if (factors != nullptr)
    for (int64_t t = 0; t < k; ++t) factors[t] = dropout.active() ? dropout.factor(i * k + t) : 1.0f;
  if (dtype == PLORA_F32 && !dropout.active()) return reinterpret_cast<const float*>(row);
  for (int64_t t = 0; t < k; ++t) {
    float f = !dropout.active() ? 1.0f : factors != nullptr ? factors[t] : dropout.factor(i * k + t);
    buffer[t] = load_f32(row, dtype, t) * f;
  }
  return buffer;
}

// Row i of a [rows,cols] matrix as fp32: the row itself for F32, else converted into `buffer`.
inline const float* f32_row(const void* x, int dtype, int64_t ld, int64_t i, int64_t cols, float* buffer) {
  const char* row = static_cast<const char*>(x) + i * ld * dtype_size(dtype);
  if (dtype == PLORA_F32) return reinterpret_cast<const float*>(row);
  for (int64_t t = 0; t < cols; ++t) buffer[t] = load_f32(row, dtype, t);
  return buffer;
}

// A [rows,cols] matrix copied to fp32 with `padded_cols` columns per row (zeros beyond cols),
// optionally transposed: small operands (A, B) are packed once per launch this way.
inline std::vector<float> pack_f32(const void* src, int dtype, int64_t ld, int64_t rows, int64_t cols,
                                   int64_t padded_cols, bool transpose) {
  int64_t out_rows = transpose ? cols : rows;
  std::vector<float> out(static_cast<size_t>(out_rows * padded_cols), 0.0f);
  for (int64_t i = 0; i < rows; ++i) {
    const char* row = static_cast<const char*>(src) + i * ld * dtype_size(dtype);
    for (int64_t t = 0; t < cols; ++t) {
      float v = load_f32(row, dtype, t);
      if (transpose) out[t * padded_cols + i] = v;
      else out[i * padded_cols + t] = v;
    }
  }
  return out;
}

}  // namespace plora

#endif
