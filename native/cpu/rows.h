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

// Philox blocks first_block .. first_block + 15 of stream (seed, stream), block-major:
// out[4 * l + w] = word w of block first_block + l, exactly as philox4x32_10 draws them one by one.
// AVX2 runs the blocks in the eight lanes of two independent sets of four registers (the rounds
// are a long dependency chain; two chains keep the multipliers busy), then transposes in registers.
constexpr int kPhiloxBatch = 32;

inline void philox_batch(uint64_t seed, uint64_t stream, uint64_t first_block, uint32_t* out) {
  const uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#if defined(__AVX2__)
  constexpr int kSets = kPhiloxBatch / 8;
  alignas(32) uint32_t lo[kPhiloxBatch], hi[kPhiloxBatch];
  for (int l = 0; l < kPhiloxBatch; ++l) {
    lo[l] = static_cast<uint32_t>(first_block + l);
    hi[l] = static_cast<uint32_t>((first_block + l) >> 32);
  }
  __m256i v0[kSets], v1[kSets], v2[kSets], v3[kSets];
  for (int s = 0; s < kSets; ++s) {
    v0[s] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo + 8 * s));
    v1[s] = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi + 8 * s));
    v2[s] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream)));
    v3[s] = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(stream >> 32)));
  }
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  // 32x32 -> 64-bit products of all eight lanes: the high words from the even and odd lanes'
  // 64-bit products, the low words in one multiply
  auto mulhilo = [](__m256i a, __m256i m, __m256i* high) {
    const __m256i even = _mm256_mul_epu32(a, m);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *high = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    return _mm256_mullo_epi32(a, m);
  };
  uint32_t key0 = k0, key1 = k1;
  for (int round = 0; round < 10; ++round) {
    const __m256i kv0 = _mm256_set1_epi32(static_cast<int>(key0)), kv1 = _mm256_set1_epi32(static_cast<int>(key1));
    for (int s = 0; s < kSets; ++s) {
      __m256i hi0, hi1;
      const __m256i lo0 = mulhilo(v0[s], m0, &hi0);
      const __m256i lo1 = mulhilo(v2[s], m1, &hi1);
      v0[s] = _mm256_xor_si256(_mm256_xor_si256(hi1, v1[s]), kv0);
      v1[s] = lo1;
      v2[s] = _mm256_xor_si256(_mm256_xor_si256(hi0, v3[s]), kv1);
      v3[s] = lo0;
    }
    key0 += 0x9E3779B9u;
    key1 += 0xBB67AE85u;
  }
  for (int s = 0; s < kSets; ++s) {  // 4x8 transpose: lanes (blocks) become rows of four words
    const __m256i t0 = _mm256_unpacklo_epi32(v0[s], v1[s]), t1 = _mm256_unpackhi_epi32(v0[s], v1[s]);
    const __m256i t2 = _mm256_unpacklo_epi32(v2[s], v3[s]), t3 = _mm256_unpackhi_epi32(v2[s], v3[s]);
    const __m256i b04 = _mm256_unpacklo_epi64(t0, t2), b15 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i b26 = _mm256_unpacklo_epi64(t1, t3), b37 = _mm256_unpackhi_epi64(t1, t3);
    __m256i* o = reinterpret_cast<__m256i*>(out + 32 * s);
    _mm256_storeu_si256(o, _mm256_permute2x128_si256(b04, b15, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(b26, b37, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(b04, b15, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(b26, b37, 0x31));
  }
#else
  for (int l = 0; l < kPhiloxBatch; ++l) {
    const Philox4 r = philox_block(seed, stream, first_block + l);
    __builtin_memcpy(out + 4 * l, r.v, sizeof r.v);  // out may be another type's storage
  }
  (void)k0;
  (void)k1;
#endif
}

// out[e] = philox_word(seed, stream, first + e) for e < count, each block drawn once for its
// four words, a batch at a time (philox_batch). Words are stored bytewise (memcpy or vector
// stores), so `out` may be the storage of floats that are about to replace them.
inline void philox_words(uint64_t seed, uint64_t stream, uint64_t first, int64_t count, uint32_t* out) {
  constexpr int kWords = 4 * kPhiloxBatch;
  const uint64_t end = first + static_cast<uint64_t>(count);
  alignas(32) uint32_t words[kWords];
  for (uint64_t b = first >> 2; b * 4 < end; b += kPhiloxBatch) {
    const uint64_t w0 = b * 4;
    if (w0 >= first && w0 + kWords <= end) {  // the whole batch is wanted: straight into out
      philox_batch(seed, stream, b, out + (w0 - first));
      continue;
    }
    philox_batch(seed, stream, b, words);
    for (int w = 0; w < kWords; ++w)
      if (w0 + w >= first && w0 + w < end) __builtin_memcpy(out + (w0 + w - first), words + w, sizeof *words);
  }
}

// Eight bf16 values <-> fp32, with exactly the rounding of f32_to_bf16 and f32_to_bf16_stochastic:
// NaNs stay quiet NaNs, and infinities and NaNs take no random bits. AVX2 does the eight lanes
// branch-free in about a dozen instructions; otherwise lane by lane.
#if defined(__AVX2__)
inline __m256i as_bits(v8 f) {
  __m256i u;
  __builtin_memcpy(&u, &f, sizeof u);
  return u;
}

inline __m256i nan_lanes(__m256i u) {  // all ones where u is a NaN (|u| above infinity's bits)
  return _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
}

inline void store_low_halves(uint16_t* p, __m256i h) {  // the low 16 bits of each lane (all < 2^16)
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(h, h), 0x08);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
#endif

inline v8 bf16x8_load(const uint16_t* p) {
  v8 f;
#if defined(__AVX2__)
  const __m256i u = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16);
  __builtin_memcpy(&f, &u, sizeof f);
#else
  for (int l = 0; l < 8; ++l) f[l] = bf16_to_f32(p[l]);
#endif
  return f;
}

inline void bf16x8_store(uint16_t* p, v8 x) {
#if defined(__AVX2__)
  const __m256i u = as_bits(x), high = _mm256_srli_epi32(u, 16);
  const __m256i bias = _mm256_add_epi32(_mm256_and_si256(high, _mm256_set1_epi32(1)), _mm256_set1_epi32(0x7fff));
  const __m256i nearest = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  store_low_halves(p, _mm256_blendv_epi8(nearest, _mm256_or_si256(high, _mm256_set1_epi32(0x40)), nan_lanes(u)));
#else
  for (int l = 0; l < 8; ++l) p[l] = f32_to_bf16(x[l]);
#endif
}

// `bits`: the eight elements' 16 random bits (rounding_bits), 16 bytes
inline void bf16x8_store_stochastic(uint16_t* p, v8 x, const void* bits) {
#if defined(__AVX2__)
  const __m256i u = as_bits(x), exponent = _mm256_set1_epi32(0x7f800000);
  const __m256i special = _mm256_cmpeq_epi32(_mm256_and_si256(u, exponent), exponent);  // inf or NaN
  const __m256i random = _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(bits)));
  const __m256i quiet = _mm256_and_si256(nan_lanes(u), _mm256_set1_epi32(0x40));
  store_low_halves(p, _mm256_or_si256(_mm256_srli_epi32(_mm256_add_epi32(u, _mm256_andnot_si256(special, random)), 16), quiet));
#else
  uint16_t r[8];
  __builtin_memcpy(r, bits, sizeof r);
  for (int l = 0; l < 8; ++l) p[l] = f32_to_bf16_stochastic(x[l], r[l]);
#endif
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
  // The words are drawn into `out` itself, then replaced by the factors eight at a time,
  // branch-free (a drop is a coin flip the branch predictor cannot learn).
  typedef uint32_t u32x8 __attribute__((vector_size(32)));
  static_assert(sizeof(float) == sizeof(uint32_t), "a word fits in a factor's place");
  philox_words(seed, stream, first, count, reinterpret_cast<uint32_t*>(static_cast<void*>(out)));
  const uint32_t keep_bits = float_bits(keep_scale);
  int64_t e = 0;
  for (; e + 8 <= count; e += 8) {
    u32x8 w;
    __builtin_memcpy(&w, out + e, sizeof w);
    const u32x8 f = (u32x8)(w >= threshold) & keep_bits;
    __builtin_memcpy(out + e, &f, sizeof f);
  }
  for (; e < count; ++e) {
    uint32_t w;
    __builtin_memcpy(&w, out + e, sizeof w);
    out[e] = w >= threshold ? keep_scale : 0.0f;
  }
}

// `cols` values of a row of dtype `dtype` as fp32: F32 copied, BF16 eight at a time.
inline void row_to_f32(const void* row, int dtype, int64_t cols, float* out) {
  if (dtype == PLORA_F32) {
    __builtin_memcpy(out, row, static_cast<size_t>(cols) * sizeof(float));
    return;
  }
  int64_t t = 0;
  if (dtype == PLORA_BF16)
    for (const uint16_t* h = static_cast<const uint16_t*>(row); t + 8 <= cols; t += 8) v8_store(out + t, bf16x8_load(h + t));
  for (; t < cols; ++t) out[t] = load_f32(row, dtype, t);
}

// `cols` fp32 values stored into a row of dtype `dtype`, rounded to nearest: F32 copied, BF16 eight
// at a time.
inline void f32_to_row(const float* src, int dtype, int64_t cols, void* row) {
  if (dtype == PLORA_F32) {
    __builtin_memcpy(row, src, static_cast<size_t>(cols) * sizeof(float));
    return;
  }
  int64_t t = 0;
  if (dtype == PLORA_BF16)
    for (uint16_t* h = static_cast<uint16_t*>(row); t + 8 <= cols; t += 8) bf16x8_store(h + t, v8_load(src + t));
  for (; t < cols; ++t) store_f32(row, dtype, t, src[t]);
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
    row_to_f32(row, dtype, k, buffer);
    return buffer;
  }
  float* f = factors != nullptr ? factors : buffer;  // without a factors buffer, draw in place
  dropout.factors(static_cast<uint64_t>(i * k), k, f);
  constexpr int64_t kChunk = 256;  // 16-bit x converted a chunk at a time beside the factors
  float chunk[kChunk];
  for (int64_t t0 = 0; t0 < k; t0 += kChunk) {
    const int64_t len = k - t0 < kChunk ? k - t0 : kChunk;
    const float* xs = chunk;
    if (dtype == PLORA_F32) xs = reinterpret_cast<const float*>(row) + t0;  // read in place
    else row_to_f32(row + t0 * dtype_size(dtype), dtype, len, chunk);
    int64_t t = 0;
    for (; t + 8 <= len; t += 8) v8_store(buffer + t0 + t, v8_load(xs + t) * v8_load(f + t0 + t));  // f may be buffer
    for (; t < len; ++t) buffer[t0 + t] = xs[t] * f[t0 + t];
  }
  return buffer;
}

// Row i of a matrix with leading dimension ld, as bytes.
inline const char* row_at(const void* base, int dtype, int64_t ld, int64_t i) {
  return static_cast<const char*>(base) + i * ld * dtype_size(dtype);
}

inline char* row_at(void* base, int dtype, int64_t ld, int64_t i) {
  return static_cast<char*>(base) + i * ld * dtype_size(dtype);
}

// Row i of a [rows,cols] matrix as fp32: the row itself for F32, else converted into `buffer`.
inline const float* f32_row(const void* x, int dtype, int64_t ld, int64_t i, int64_t cols, float* buffer) {
  const char* row = static_cast<const char*>(x) + i * ld * dtype_size(dtype);
  if (dtype == PLORA_F32) return reinterpret_cast<const float*>(row);
  row_to_f32(row, dtype, cols, buffer);
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
