// Helpers shared by the host kernels: fp32 row access with dropout, and 8-wide float vectors.
#ifndef PLORA_CPU_ROWS_H
#define PLORA_CPU_ROWS_H

#include <cstdint>
#include <vector>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

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

// Ten Philox4x32 rounds on eight counters at once (lane l = block l), exactly as
// philox4x32_10 does for one: AVX2 when compiled for it, otherwise lane by lane.
inline void philox_rounds_x8(uint32_t* c0, uint32_t* c1, uint32_t* c2, uint32_t* c3, uint32_t k0, uint32_t k1) {
#if defined(__AVX2__)
  __m256i v0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c0));
  __m256i v1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c1));
  __m256i v2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c2));
  __m256i v3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c3));
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  // 32x32 -> 64-bit products of all eight lanes, split into low and high words per lane
  auto mulhilo = [](__m256i a, __m256i m, __m256i* hi) {
    const __m256i even = _mm256_mul_epu32(a, m);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  };
  for (int round = 0; round < 10; ++round) {
    __m256i hi0, hi1;
    const __m256i lo0 = mulhilo(v0, m0, &hi0);
    const __m256i lo1 = mulhilo(v2, m1, &hi1);
    v0 = _mm256_xor_si256(_mm256_xor_si256(hi1, v1), _mm256_set1_epi32(static_cast<int>(k0)));
    v1 = lo1;
    v2 = _mm256_xor_si256(_mm256_xor_si256(hi0, v3), _mm256_set1_epi32(static_cast<int>(k1)));
    v3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(c0), v0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(c1), v1);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(c2), v2);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(c3), v3);
#else
  for (int l = 0; l < 8; ++l) {
    Philox4 r = philox4x32_10(Philox4{{c0[l], c1[l], c2[l], c3[l]}}, k0, k1);
    c0[l] = r.v[0];
    c1[l] = r.v[1];
    c2[l] = r.v[2];
    c3[l] = r.v[3];
  }
#endif
}

// out[e] = philox_word(seed, stream, first + e) for e < count, drawing each Philox block once for
// its four words, eight blocks at a time (philox_rounds_x8).
inline void philox_words(uint64_t seed, uint64_t stream, uint64_t first, int64_t count, uint32_t* out) {
  constexpr int kBatch = 8;
  const uint64_t end = first + static_cast<uint64_t>(count);
  for (uint64_t b = first >> 2; b * 4 < end; b += kBatch) {
    uint32_t c0[kBatch], c1[kBatch], c2[kBatch], c3[kBatch];
    for (int l = 0; l < kBatch; ++l) {
      c0[l] = static_cast<uint32_t>(b + l);
      c1[l] = static_cast<uint32_t>((b + l) >> 32);
      c2[l] = static_cast<uint32_t>(stream);
      c3[l] = static_cast<uint32_t>(stream >> 32);
    }
    philox_rounds_x8(c0, c1, c2, c3, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    if (b * 4 >= first && (b + kBatch) * 4 <= end) {  // the whole batch is wanted: no range checks
      uint32_t* o = out + (b * 4 - first);
      for (int l = 0; l < kBatch; ++l) {
        o[4 * l] = c0[l];
        o[4 * l + 1] = c1[l];
        o[4 * l + 2] = c2[l];
        o[4 * l + 3] = c3[l];
      }
      continue;
    }
    for (int l = 0; l < kBatch; ++l) {
      const uint32_t words[4] = {c0[l], c1[l], c2[l], c3[l]};
      for (int w = 0; w < 4; ++w) {
        const uint64_t e = (b + l) * 4 + w;
        if (e >= first && e < end) out[e - first] = words[w];
      }
    }
  }
}

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

  // out[e] = factor(first + e) for e < count, from philox_words. Same bits as factor().
  void factors(uint64_t first, int64_t count, float* out) const;
};

inline void DropoutKeys::factors(uint64_t first, int64_t count, float* out) const {
  if (!active()) {
    for (int64_t e = 0; e < count; ++e) out[e] = 1.0f;
    return;
  }
  // The words are drawn into `out` itself, then replaced by the factors (memcpy: no aliasing).
  static_assert(sizeof(float) == sizeof(uint32_t), "a word fits in a factor's place");
  philox_words(seed, stream, first, count, reinterpret_cast<uint32_t*>(static_cast<void*>(out)));
  for (int64_t e = 0; e < count; ++e) {
    uint32_t w;
    __builtin_memcpy(&w, out + e, sizeof w);
    out[e] = w >= threshold ? keep_scale : 0.0f;
  }
}

// Row i of a [m,k] matrix as fp32 with dropout applied. Returns the row itself when it is F32 and
// no dropout is active; otherwise fills `buffer` (k floats). When `factors` is given it also
// receives each element's dropout factor (1 without dropout).
inline const float* dropped_row(const void* x, int dtype, int64_t ld, int64_t i, int64_t k,
                                const DropoutKeys& dropout, float* buffer, float* factors = nullptr) {
  const char* row = static_cast<const char*>(x) + i * ld * dtype_size(dtype);
  if (!dropout.active()) {
    if (factors != nullptr)
      for (int64_t t = 0; t < k; ++t) factors[t] = 1.0f;
    if (dtype == PLORA_F32) return reinterpret_cast<const float*>(row);
    for (int64_t t = 0; t < k; ++t) buffer[t] = load_f32(row, dtype, t);
    return buffer;
  }
  float* f = factors != nullptr ? factors : buffer;  // without a factors buffer, draw in place
  dropout.factors(static_cast<uint64_t>(i * k), k, f);
  for (int64_t t = 0; t < k; ++t) buffer[t] = load_f32(row, dtype, t) * f[t];
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
