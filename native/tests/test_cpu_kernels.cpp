// Native tests of libplora_cpu and of the shared host/device headers.
#include <cstring>

#include "check.h"
#include "plora/cpu.h"
#include "plora/numerics.h"
#include "plora/philox.h"

using namespace plora;

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
static void test_philox_known_answers() {
  struct Kat { uint32_t ctr[4], key[2], out[4]; };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    Philox4 c{{k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]}};
    Philox4 r = philox4x32_10(c, k.key[0], k.key[1]);
    for (int i = 0; i < 4; ++i) CHECK(r.v[i] == k.out[i], "philox word %d: %08x != %08x", i, r.v[i], k.out[i]);
  }
}

static void test_half_conversions() {
  struct Case { float in; uint16_t bf16, f16; };
  const Case cases[] = {
      {0.0f, 0x0000, 0x0000},          {-0.0f, 0x8000, 0x8000},
      {1.0f, 0x3f80, 0x3c00},          {-2.5f, 0xc020, 0xc100},
      {65504.0f, 0x4780, 0x7bff},      {65520.0f, 0x4780, 0x7c00},  // f16 overflow by rounding
      {1.0f / 16777216.0f, 0x3380, 0x0001},                          // 2^-24: smallest f16 subnormal
      {1.00390625f, 0x3f80, 0x3c04},   // 1 + 2^-8: bf16 tie rounds to even (down)
      {1.01171875f, 0x3f82, 0x3c0c},   // 1 + 3*2^-8: bf16 tie rounds to even (up)
      {INFINITY, 0x7f80, 0x7c00},
  };
  for (const Case& c : cases) {
    CHECK(f32_to_bf16(c.in) == c.bf16, "bf16(%g) = %04x, want %04x", c.in, f32_to_bf16(c.in), c.bf16);
    CHECK(f32_to_f16(c.in) == c.f16, "f16(%g) = %04x, want %04x", c.in, f32_to_f16(c.in), c.f16);
  }
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))), "bf16 NaN lost");
  CHECK(std::isnan(f16_to_f32(f32_to_f16(NAN))), "f16 NaN lost");
  // Every finite f16 survives f16 -> f32 -> f16.
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    if ((h & 0x7c00u) == 0x7c00u) continue;
    uint16_t back = f32_to_f16(f16_to_f32(static_cast<uint16_t>(h)));
    if (back != h) { CHECK(false, "f16 %04x round trip gave %04x", h, back); break; }
  }
}

static void test_shrink(int64_t m, int64_t k, int64_t r, float p, int dtype, std::mt19937_64& rng) {
  const int64_t ldx = k + 3, lda = k + 1, ldo = r + 5;
  const float scaling = 0.75f;
  const uint64_t seed = 1234, stream = 7;
  std::vector<float> x32 = random_floats(m * ldx, rng), a32 = random_floats(r * lda, rng);
  const size_t es = dtype_size(dtype);
  std::vector<char> x(m * ldx * es), a(r * lda * es), out(m * ldo * es), mask(m * k * es);
  CHECK(plora_cpu_copy(x32.data(), PLORA_F32, ldx, x.data(), dtype, ldx, m, ldx) == PLORA_OK, "copy x");
  CHECK(plora_cpu_copy(a32.data(), PLORA_F32, lda, a.data(), dtype, lda, r, lda) == PLORA_OK, "copy a");
  CHECK(plora_cpu_fill(out.data(), dtype, ldo, m, ldo, NAN) == PLORA_OK, "poison out");
  CHECK(plora_cpu_dropout_mask(mask.data(), dtype, k, m, k, p, seed, stream) == PLORA_OK, "mask");
  CHECK(plora_cpu_shrink(x.data(), ldx, a.data(), lda, out.data(), ldo, dtype, m, k, r, scaling, p,
                         seed, stream) == PLORA_OK,
        "shrink: %s", plora_cpu_last_error());
  std::vector<double> ref(m * r);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < r; ++j) {
      double acc = 0;
      for (int64_t t = 0; t < k; ++t)
        acc += (double)load_f32(x.data(), dtype, i * ldx + t) * load_f32(mask.data(), dtype, i * k + t) *
               load_f32(a.data(), dtype, j * lda + t);
      ref[i * r + j] = scaling * acc;
    }
  std::vector<float> got(m * ldo);
  plora_cpu_copy(out.data(), dtype, ldo, got.data(), PLORA_F32, ldo, m, ldo);
  double err = relative_error(got.data(), ldo, ref, m, r);
  double tol = dtype == PLORA_F32 ? 1e-5 : 1e-2;
  CHECK(err <= tol, "shrink m=%lld k=%lld r=%lld p=%g dtype=%d: rel err %g", (long long)m,
        (long long)k, (long long)r, p, dtype, err);
  // the padding columns stay untouched
  CHECK(std::isnan(got[ldo - 1]), "shrink wrote past r");
}

static void test_rejects_bad_arguments() {
  float buf[16];
  CHECK(plora_cpu_shrink(buf, 1, buf, 4, buf, 4, PLORA_F32, 2, 4, 2, 1, 0, 0, 0) == PLORA_ERR_INVALID,
        "ld_x < k accepted");
  CHECK(std::strstr(plora_cpu_last_error(), "x:") != nullptr, "message names x: %s", plora_cpu_last_error());
  CHECK(plora_cpu_fill(buf, 9, 4, 1, 4, 0) == PLORA_ERR_INVALID, "bad dtype accepted");
  CHECK(plora_cpu_dropout_mask(buf, PLORA_F32, 4, 1, 4, 1.0f, 0, 0) == PLORA_ERR_INVALID, "p=1 accepted");
  CHECK(plora_cpu_alloc(-1) == nullptr, "negative allocation accepted");
}

int main() {
  std::mt19937_64 rng(42);
  test_philox_known_answers();
  test_half_conversions();
  for (int dtype : {PLORA_F32, PLORA_BF16, PLORA_F16})
    for (int64_t r : {1, 2, 8, 16, 64})
      for (float p : {0.0f, 0.1f, 0.5f}) test_shrink(r == 1 ? 1 : 37, 129, r, p, dtype, rng);
  test_rejects_bad_arguments();
  std::printf("%s (%d failures)\n", g_failures ? "FAILED" : "OK", g_failures);
  return g_failures ? 1 : 0;
}
