/* Philox4x32-10 counter-based RNG (Salmon et al., SC'11), shared by host and device so that the
 * CPU and CUDA kernels draw the same dropout masks and the same random inits.
 *
 * A stream of random words is keyed by (seed, stream): the seed is the key, the stream is the
 * upper half of the counter. Element i of a stream uses word (i mod 4) of the block at counter
 * (i / 4, stream), so any element can be drawn independently, in any order, on any device. */
#ifndef PLORA_PHILOX_H
#define PLORA_PHILOX_H

#include <math.h>
#include <stdint.h>

#include "plora/numerics.h"

namespace plora {

struct Philox4 {
  uint32_t v[4];
};

PLORA_HD uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

PLORA_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo32(0xD2511F53u, ctr.v[0], &hi0);
    uint32_t lo1 = mulhilo32(0xCD9E8D57u, ctr.v[2], &hi1);
    Philox4 next;
    next.v[0] = hi1 ^ ctr.v[1] ^ k0;
    next.v[1] = lo1;
    next.v[2] = hi0 ^ ctr.v[3] ^ k1;
    next.v[3] = lo0;
    ctr = next;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

/* The four words of block `block` of stream (seed, stream): counter (block, stream), key seed. */
PLORA_HD Philox4 philox_block(uint64_t seed, uint64_t stream, uint64_t block) {
  Philox4 c;
  c.v[0] = static_cast<uint32_t>(block);
  c.v[1] = static_cast<uint32_t>(block >> 32);
  c.v[2] = static_cast<uint32_t>(stream);
  c.v[3] = static_cast<uint32_t>(stream >> 32);
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

/* The random 32-bit word for element i of stream (seed, stream). */
PLORA_HD uint32_t philox_word(uint64_t seed, uint64_t stream, uint64_t i) {
  return philox_block(seed, stream, i >> 2).v[i & 3];
}

/* Dropout with probability p drops element i when its word is below this threshold; computed
 * in double on the host once per launch so every device compares against the same integer. */
inline uint32_t dropout_threshold(float p) {
  double t = static_cast<double>(p) * 4294967296.0;
  if (t <= 0.0) return 0u;
  if (t >= 4294967295.0) return 0xffffffffu;
  return static_cast<uint32_t>(t);
}

PLORA_HD bool dropout_keep(uint64_t seed, uint64_t stream, uint64_t i, uint32_t threshold) {
  return threshold == 0u || philox_word(seed, stream, i) >= threshold;
}

/* The 16 random bits of element i for stochastic rounding: half (i % 2) of word i / 2, so one
 * Philox block serves eight elements. */
PLORA_HD uint32_t rounding_bits(uint64_t seed, uint64_t stream, uint64_t i) {
  return (philox_word(seed, stream, i >> 1) >> (16 * static_cast<unsigned>(i & 1))) & 0xffffu;
}

/* Uniform in [0,1) from the top 24 bits of a random word. */
PLORA_HD float uniform_from_word(uint32_t word) {
  return static_cast<float>(word >> 8) * 5.9604644775390625e-8f;
}

/* Uniform in [0,1) with 24 random bits: element i of stream (seed, stream). */
PLORA_HD float philox_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  return uniform_from_word(philox_word(seed, stream, i));
}

/* Box-Muller's radius sqrt(-2 ln u1), u1 in (0,1] from the top 24 bits of a random word. */
PLORA_HD float box_muller_radius(uint32_t w1) {
  float u1 = static_cast<float>((w1 >> 8) + 1u) * 5.9604644775390625e-8f;
  return sqrtf(-2.0f * logf(u1));
}

/* Standard normal by Box-Muller from two random words: radius(w1) cos(2 pi u2), u2 in [0,1) from
 * w2. The CUDA fill takes the cosine as cospif(2 u2) (cosf's reduction of huge arguments would
 * give the kernel a stack frame); host and device libm may differ in the last bit. */
PLORA_HD float normal_from_words(uint32_t w1, uint32_t w2) {
  return box_muller_radius(w1) * cosf(6.28318530717958647692f * uniform_from_word(w2));
}

/* Standard normal: element i of stream (seed, stream), from the two words (2*(i%2), 2*(i%2)+1)
 * of the block at counter (i / 2, stream). */
PLORA_HD float philox_normal(uint64_t seed, uint64_t stream, uint64_t i) {
  Philox4 r = philox_block(seed, stream, i >> 1);
  return (i & 1) == 0 ? normal_from_words(r.v[0], r.v[1]) : normal_from_words(r.v[2], r.v[3]);
}

}  // namespace plora

#endif
