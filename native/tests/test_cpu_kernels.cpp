// Native tests of libplora_cpu and of the shared host/device headers.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <omp.h>

#include "../cpu/parallel.h"
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


// A random [rows, ld] matrix stored in dtype, and its stored values as fp32.
struct Mat {
  int64_t rows, cols, ld;
  int dtype;
  std::vector<char> data;
  Mat(int64_t r, int64_t c, int64_t l, int dt, std::mt19937_64& rng) : rows(r), cols(c), ld(l), dtype(dt), data(r * l * dtype_size(dt)) {
    std::vector<float> v = random_floats(r * l, rng);
    plora_cpu_copy(v.data(), PLORA_F32, l, data.data(), dt, l, r, l);
  }
  float at(int64_t i, int64_t j) const { return load_f32(data.data(), dtype, i * ld + j); }
  void* ptr() { return data.data(); }
};

static void test_dy_pass(int64_t m, int64_t n, int64_t r, int dtype, std::mt19937_64& rng) {
  const float s = 1.5f;
  Mat dy(m, n, n + 3, dtype, rng), b(n, r, r + 5, dtype, rng), ss(m, r, r + 1, dtype, rng), ds(m, r, r + 2, dtype, rng);
  std::vector<float> db = random_floats(n * (r + 4), rng), db0 = db;
  plora_cpu_fill(ds.ptr(), dtype, ds.ld, m, ds.ld, NAN);
  CHECK(plora_cpu_dy_pass(dy.ptr(), dy.ld, b.ptr(), b.ld, ss.ptr(), ss.ld, ds.ptr(), ds.ld, db.data(), r + 4, dtype, m, n, r, s) == PLORA_OK,
        "dy_pass: %s", plora_cpu_last_error());
  std::vector<double> ref_ds(m * r), ref_db(n * r);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < r; ++j) {
      double acc = 0;
      for (int64_t t = 0; t < n; ++t) acc += (double)dy.at(i, t) * b.at(t, j);
      ref_ds[i * r + j] = s * acc;
    }
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < r; ++j) {
      double acc = db0[t * (r + 4) + j];
      for (int64_t i = 0; i < m; ++i) acc += (double)dy.at(i, t) * ss.at(i, j);
      ref_db[t * r + j] = acc;
    }
  std::vector<float> got(m * ds.ld);
  plora_cpu_copy(ds.ptr(), dtype, ds.ld, got.data(), PLORA_F32, ds.ld, m, ds.ld);
  double tol = dtype == PLORA_F32 ? 1e-5 : 1e-2;
  CHECK(relative_error(got.data(), ds.ld, ref_ds, m, r) <= tol, "dy_pass ds m=%lld n=%lld r=%lld dtype=%d: %g", (long long)m,
        (long long)n, (long long)r, dtype, relative_error(got.data(), ds.ld, ref_ds, m, r));
  CHECK(relative_error(db.data(), r + 4, ref_db, n, r) <= 1e-5, "dy_pass db m=%lld n=%lld r=%lld dtype=%d: %g", (long long)m,
        (long long)n, (long long)r, dtype, relative_error(db.data(), r + 4, ref_db, n, r));
  CHECK(db[r + 3] == db0[r + 3], "dy_pass wrote db padding");
}

static void test_da_dx(int64_t m, int64_t k, int64_t r, float p, bool with_dx, int dtype, std::mt19937_64& rng) {
  const uint64_t seed = 77, stream = 5;
  Mat x(m, k, k + 3, dtype, rng), ds(m, r, r + 2, dtype, rng), a(r, k, k + 1, dtype, rng), dx(m, k, k + 4, dtype, rng);
  Mat dx0 = dx;
  std::vector<float> da = random_floats(r * (k + 2), rng), da0 = da;
  std::vector<float> mask(m * k);
  plora_cpu_dropout_mask(mask.data(), PLORA_F32, k, m, k, p, seed, stream);
  CHECK(plora_cpu_da_dx(x.ptr(), x.ld, ds.ptr(), ds.ld, a.ptr(), a.ld, da.data(), k + 2, with_dx ? dx.ptr() : nullptr, dx.ld, dtype, m, k,
                        r, p, seed, stream) == PLORA_OK,
        "da_dx: %s", plora_cpu_last_error());
  std::vector<double> ref_da(r * k), ref_dx(m * k);
  for (int64_t j = 0; j < r; ++j)
    for (int64_t t = 0; t < k; ++t) {
      double acc = da0[j * (k + 2) + t];
      for (int64_t i = 0; i < m; ++i) acc += (double)ds.at(i, j) * x.at(i, t) * mask[i * k + t];
      ref_da[j * k + t] = acc;
    }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t t = 0; t < k; ++t) {
      double acc = 0;
      for (int64_t j = 0; j < r; ++j) acc += (double)ds.at(i, j) * a.at(j, t);
      ref_dx[i * k + t] = dx0.at(i, t) + (with_dx ? mask[i * k + t] * acc : 0.0);
    }
  CHECK(relative_error(da.data(), k + 2, ref_da, r, k) <= 1e-5, "da m=%lld k=%lld r=%lld p=%g dtype=%d: %g", (long long)m,
        (long long)k, (long long)r, p, dtype, relative_error(da.data(), k + 2, ref_da, r, k));
  std::vector<float> got(m * dx.ld);
  plora_cpu_copy(dx.ptr(), dtype, dx.ld, got.data(), PLORA_F32, dx.ld, m, dx.ld);
  double tol = dtype == PLORA_F32 ? 1e-5 : 1e-2;
  CHECK(relative_error(got.data(), dx.ld, ref_dx, m, k) <= tol, "dx m=%lld k=%lld r=%lld p=%g dtype=%d: %g", (long long)m,
        (long long)k, (long long)r, p, dtype, relative_error(got.data(), dx.ld, ref_dx, m, k));
}

static void test_ops(std::mt19937_64& rng) {
  // axpby with beta = 0 ignores a NaN y
  std::vector<float> x = random_floats(6 * 7, rng), y(6 * 9, NAN);
  CHECK(plora_cpu_axpby(2.0f, x.data(), PLORA_F32, 7, 0.0f, y.data(), PLORA_F32, 9, 6, 7) == PLORA_OK, "axpby");
  CHECK(y[9 + 3] == 2.0f * x[7 + 3] && std::isnan(y[8]), "axpby beta=0");
  CHECK(plora_cpu_axpby(1.0f, x.data(), PLORA_F32, 7, -0.5f, y.data(), PLORA_F32, 9, 6, 7) == PLORA_OK, "axpby");
  CHECK(std::fabs(y[9 + 3] - 0.0f * x[7 + 3]) < 1e-6f, "axpby beta: %g", y[9 + 3]);
  // bias
  std::vector<float> bias = random_floats(7, rng), z(6 * 9, 1.0f);
  CHECK(plora_cpu_add_bias(z.data(), PLORA_F32, 9, 6, 7, bias.data(), PLORA_F32) == PLORA_OK, "bias");
  CHECK(z[5 * 9 + 6] == 1.0f + bias[6] && z[5 * 9 + 7] == 1.0f, "bias values");
  // random fills: moments of 2^16 draws, and reproducibility
  const int64_t n = 1 << 16;
  std::vector<float> u(n), g(n), g2(n);
  CHECK(plora_cpu_random_fill(u.data(), PLORA_F32, 256, 256, 256, PLORA_UNIFORM, -2.0f, 2.0f, 1, 2) == PLORA_OK, "uniform");
  CHECK(plora_cpu_random_fill(g.data(), PLORA_F32, 256, 256, 256, PLORA_NORMAL, 1.0f, 3.0f, 1, 2) == PLORA_OK, "normal");
  CHECK(plora_cpu_random_fill(g2.data(), PLORA_F32, 256, 256, 256, PLORA_NORMAL, 1.0f, 3.0f, 1, 2) == PLORA_OK, "normal");
  CHECK(g == g2, "same keys, same draws");
  double su = 0, su2 = 0, sg = 0, sg2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    CHECK(u[i] >= -2.0f && u[i] < 2.0f, "uniform out of range: %g", u[i]);
    su += u[i]; su2 += (double)u[i] * u[i]; sg += g[i]; sg2 += (double)g[i] * g[i];
  }
  double mu = su / n, vu = su2 / n - mu * mu, mg = sg / n, vg = sg2 / n - mg * mg;
  CHECK(std::fabs(mu) < 4 * std::sqrt(16.0 / 12 / n), "uniform mean %g", mu);
  CHECK(std::fabs(vu - 16.0 / 12) < 0.03, "uniform variance %g", vu);
  CHECK(std::fabs(mg - 1.0) < 4 * 3.0 / std::sqrt((double)n), "normal mean %g", mg);
  CHECK(std::fabs(vg - 9.0) < 0.2, "normal variance %g", vg);
  CHECK(plora_cpu_random_fill(u.data(), PLORA_F32, 256, 1, 1, 7, 0, 1, 1, 2) == PLORA_ERR_INVALID, "bad distribution");
  // non-finite count
  std::vector<float> w(5 * 6, 1.0f);
  w[3] = NAN; w[7] = INFINITY; w[5 * 6 - 1] = -INFINITY; w[4 * 6 + 5] = NAN;  // last one is padding below
  int64_t count = -1;
  CHECK(plora_cpu_count_nonfinite(w.data(), PLORA_F32, 6, 5, 5, &count) == PLORA_OK && count == 2, "count %lld", (long long)count);
  // 16-bit rows: NaN, +-inf, the largest finite values and values only f16 cannot hold
  for (int dtype : {PLORA_BF16, PLORA_F16}) {
    const float values[] = {1.0f, NAN, INFINITY, -INFINITY, 65504.0f, 1e5f, -3e38f, 0.0f, 5.0f};
    std::vector<uint16_t> h(3 * 11, 0x7fc0);  // ld 11: the NaN padding must not count
    int64_t want = 0;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 9; ++j) {
        store_f32(h.data() + i * 11, dtype, j, values[j]);
        want += std::isfinite(load_f32(h.data() + i * 11, dtype, j)) ? 0 : 1;
      }
    CHECK(plora_cpu_count_nonfinite(h.data(), dtype, 11, 3, 9, &count) == PLORA_OK && count == want,
          "count dtype=%d: %lld, want %lld", dtype, (long long)count, (long long)want);
  }
}


static void test_merge(int64_t n, int64_t k, int64_t r, int w_dtype, std::mt19937_64& rng) {
  const float c = 0.3f;
  Mat w(n, k, k + 2, w_dtype, rng), a(r, k, k + 1, PLORA_F32, rng), b(n, r, r + 3, PLORA_F32, rng);
  Mat w0 = w, a0 = a, b0 = b;
  CHECK(plora_cpu_merge(w.ptr(), w_dtype, w.ld, b.ptr(), b.ld, a.ptr(), a.ld, PLORA_F32, n, k, r, c, PLORA_ROUND_NEAREST, 1, 2,
                        0.5f, 0.25f) == PLORA_OK, "merge: %s", plora_cpu_last_error());
  std::vector<double> ref(n * k);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < k; ++t) {
      double acc = 0;
      for (int64_t j = 0; j < r; ++j) acc += (double)b0.at(i, j) * a0.at(j, t);
      ref[i * k + t] = w0.at(i, t) + c * acc;
    }
  std::vector<float> got(n * w.ld);
  plora_cpu_copy(w.ptr(), w_dtype, w.ld, got.data(), PLORA_F32, w.ld, n, w.ld);
  CHECK(relative_error(got.data(), w.ld, ref, n, k) <= (w_dtype == PLORA_F32 ? 1e-6 : 4e-3), "merge w dtype=%d r=%lld: %g", w_dtype,
        (long long)r, relative_error(got.data(), w.ld, ref, n, k));
  // round to nearest: exactly the nearest bf16/f16 of the fp32 result (checked on one element)
  CHECK(a.at(0, 0) == 0.5f * a0.at(0, 0) && b.at(n - 1, r - 1) == 0.25f * b0.at(n - 1, r - 1), "merge scales a and b");
  CHECK(a.at(0, k) == a0.at(0, k), "merge scaled a's padding");
}

// Stochastic rounding into bf16: unbiased over seeds, deterministic for one seed.
static void test_stochastic_merge() {
  const int64_t n = 1, k = 64, r = 1;
  const float w_value = 1.0f, a_value = 1.0f, b_value = 1.0f / 1024;  // 1 + 2^-10: between bf16 neighbours 1 and 1+2^-7
  std::vector<float> a(k, a_value), b(1, b_value);
  double sum = 0;
  const int seeds = 400;
  std::vector<uint16_t> first(k);
  for (int s = 0; s < seeds; ++s) {
    std::vector<uint16_t> w(k, f32_to_bf16(w_value));
    CHECK(plora_cpu_merge(w.data(), PLORA_BF16, k, b.data(), r, a.data(), k, PLORA_F32, n, k, r, 1.0f, PLORA_ROUND_STOCHASTIC,
                          1000 + s, 9, 1.0f, 1.0f) == PLORA_OK, "sr merge");
    for (int64_t t = 0; t < k; ++t) {
      float v = bf16_to_f32(w[t]);
      CHECK(v == 1.0f || v == 1.0078125f, "sr result %g is not a neighbour", v);
      sum += v;
    }
    if (s == 0) first = w;
  }
  const double exact = 1.0 + 1.0 / 1024, p = (1.0 / 1024) / (1.0 / 128);  // P(round up) = 1/8
  const double count = seeds * k, mean = sum / count;
  const double sigma = (1.0 / 128) * std::sqrt(p * (1 - p) / count);
  CHECK(std::fabs(mean - exact) <= 4 * sigma, "sr mean %.9f vs exact %.9f (4 sigma %.2g)", mean, exact, 4 * sigma);
  std::vector<uint16_t> again(k, f32_to_bf16(w_value));
  plora_cpu_merge(again.data(), PLORA_BF16, k, b.data(), r, a.data(), k, PLORA_F32, n, k, r, 1.0f, PLORA_ROUND_STOCHASTIC, 1000, 9,
                  1.0f, 1.0f);
  CHECK(again == first, "sr is deterministic for one seed");
}

// The merge into 16-bit W replays exactly, element by element: the update summed over j in order
// with fused multiply-adds, added to w once, then rounded by f32_to_bf16 / f32_to_f16 or, for
// stochastic rounding, by f32_to_bf16_stochastic with rounding_bits of the element's index.
// k = 101 reaches the 24-column tiles, an 8-column tile and a 5-column tail, and rows start on odd
// elements (split Philox words); W holds infinities, NaNs and values that overflow when rounded.
static void test_merge_replays_bit_for_bit(int w_dtype, int rounding, std::mt19937_64& rng) {
  const int64_t n = 5, k = 101, r = 3, ld = k + 7;
  const float c = 0.75f;
  const uint64_t seed = 5, stream = 6;
  std::vector<float> a = random_floats(r * k, rng), b = random_floats(n * r, rng), w0 = random_floats(n * k, rng);
  const float specials[] = {INFINITY, -INFINITY, NAN, -NAN, 3.389e38f, -3.389e38f, 1.0f + 1.0f / 256, 0.0f};
  for (int s = 0; s < 8; ++s) w0[(s * 61) % (n * k)] = specials[s];
  std::vector<uint16_t> w(n * ld, 0x5555);  // 16-bit storage; the padding must survive
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < k; ++t) store_f32(w.data() + i * ld, w_dtype, t, w0[i * k + t]);
  std::vector<uint16_t> before = w;
  CHECK(plora_cpu_merge(w.data(), w_dtype, ld, b.data(), r, a.data(), k, PLORA_F32, n, k, r, c, rounding, seed, stream,
                        1.0f, 1.0f) == PLORA_OK, "merge: %s", plora_cpu_last_error());
  const bool stochastic = rounding == PLORA_ROUND_STOCHASTIC && w_dtype == PLORA_BF16;
  int mismatches = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = 0; t < k; ++t) {
      float update = 0.0f;
      for (int64_t j = 0; j < r; ++j) update = std::fma(c * b[i * r + j], a[j * k + t], update);
      const float x = load_f32(before.data() + i * ld, w_dtype, t) + update;
      const uint64_t e = static_cast<uint64_t>(i * k + t);
      uint16_t want;
      if (stochastic) want = f32_to_bf16_stochastic(x, rounding_bits(seed, stream, e));
      else if (w_dtype == PLORA_BF16) want = f32_to_bf16(x);
      else want = f32_to_f16(x);
      if (w[i * ld + t] != want && mismatches++ < 3)
        CHECK(false, "merge dtype=%d rounding=%d w[%lld,%lld] = %04x, replay %04x", w_dtype, rounding, (long long)i,
              (long long)t, w[i * ld + t], want);
    }
    for (int64_t t = k; t < ld; ++t) CHECK(w[i * ld + t] == 0x5555, "merge wrote past k in row %lld", (long long)i);
  }
  CHECK(mismatches == 0, "merge dtype=%d rounding=%d: %d elements differ from the replay", w_dtype, rounding, mismatches);
}

// The vectorised rounding against the scalar rules on chosen bit patterns: with w = 0, c = b = 1,
// r = 1, element t of the merge is exactly a[t], so ties, carries into the exponent, NaN payloads
// (which must not carry random bits into the sign) and overflow all reach the 8-wide stores.
static void test_merge_rounding_edge_cases(int rounding) {
  const uint32_t patterns[] = {0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u, 0x3f80ffffu, 0x3f7fffffu,
                               0x7f7fffffu, 0x7f7f8000u, 0x7f7f7fffu, 0xff7fffffu, 0x7f800000u, 0xff800000u,
                               0x7f80ffffu, 0x7fc0ffffu, 0xffffffffu, 0x7fbfffffu, 0x00008000u, 0x80018000u,
                               0x00000001u, 0x807fffffu, 0x3380ffffu, 0xc0490fdbu, 0x00000000u, 0x80000000u};
  const int64_t n = 2, k = 2 * 24 + 8;  // two 24-column tiles and one 8-column tile
  std::vector<float> a(k), b(n, 1.0f);
  for (int64_t t = 0; t < k; ++t) a[t] = bits_float(patterns[t % 24]);
  std::vector<uint16_t> w(n * k, 0);
  CHECK(plora_cpu_merge(w.data(), PLORA_BF16, k, b.data(), 1, a.data(), k, PLORA_F32, n, k, 1, 1.0f, rounding, 7, 8, 1.0f,
                        1.0f) == PLORA_OK, "merge: %s", plora_cpu_last_error());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t t = 0; t < k; ++t) {
      const float x = 0.0f + std::fma(1.0f, a[t], 0.0f);
      const uint16_t want = rounding == PLORA_ROUND_STOCHASTIC
                                ? f32_to_bf16_stochastic(x, rounding_bits(7, 8, static_cast<uint64_t>(i * k + t)))
                                : f32_to_bf16(x);
      CHECK(w[i * k + t] == want, "rounding %d of %08x (element [%lld,%lld]): %04x, scalar rule %04x", rounding,
            float_bits(x), (long long)i, (long long)t, w[i * k + t], want);
    }
}

// GELU and its derivative against float64 over [-13, 13] (the negative tail, where 1 + erf would
// cancel, included), through the vector body and the tail (cols = 1001), with the special values;
// bf16 rows get exactly the rounding of the fp32 results.
static void test_gelu_accuracy() {
  const int64_t cols = 1001;
  std::vector<float> x(cols), ones(cols, 1.0f), y(cols, NAN), dx(cols, NAN);  // outputs poisoned
  for (int64_t t = 0; t < cols; ++t) x[t] = -13.0f + 26.0f * static_cast<float>(t) / (cols - 1);
  CHECK(plora_cpu_gelu(x.data(), cols, y.data(), cols, PLORA_F32, 1, cols) == PLORA_OK, "gelu");
  CHECK(plora_cpu_gelu_backward(x.data(), cols, ones.data(), cols, dx.data(), cols, PLORA_F32, 1, cols) == PLORA_OK, "gelu'");
  double worst = 0, worst_d = 0;
  for (int64_t t = 0; t < cols; ++t) {
    const double v = x[t], cdf = 0.5 * std::erfc(-v / std::sqrt(2.0)), pdf = std::exp(-0.5 * v * v) / std::sqrt(2 * M_PI);
    if (v * cdf != 0) worst = std::max(worst, std::fabs(y[t] - v * cdf) / std::fabs(v * cdf));
    // the derivative's two terms cancel near its root at -0.75: error relative to their sizes
    worst_d = std::max(worst_d, std::fabs(dx[t] - (cdf + v * pdf)) / (std::fabs(cdf) + std::fabs(v * pdf)));
  }
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isfinite(v); }) &&
            std::all_of(dx.begin(), dx.end(), [](float v) { return std::isfinite(v); }),
        "gelu wrote every element (the outputs were NaN before)");
  // about 8 and 5 ulp (measured 3.4e-7 and 1.9e-7 on these points)
  CHECK(worst <= 5e-7, "gelu: worst relative error %.3g against float64", worst);
  CHECK(worst_d <= 3e-7, "gelu': worst relative error %.3g against float64", worst_d);

  float out[kGeluSpecialCount], grad[kGeluSpecialCount], g1[kGeluSpecialCount];
  std::fill(g1, g1 + kGeluSpecialCount, 1.0f);
  std::fill(out, out + kGeluSpecialCount, 12345.0f);
  std::fill(grad, grad + kGeluSpecialCount, 12345.0f);
  plora_cpu_gelu(kGeluSpecials, kGeluSpecialCount, out, kGeluSpecialCount, PLORA_F32, 1, kGeluSpecialCount);
  plora_cpu_gelu_backward(kGeluSpecials, kGeluSpecialCount, g1, kGeluSpecialCount, grad, kGeluSpecialCount, PLORA_F32, 1,
                          kGeluSpecialCount);
  check_gelu_specials("cpu", out, grad);

  std::vector<uint16_t> xb(cols), yb(cols, 0x7fc1);
  std::vector<float> xr(cols), yr(cols, NAN);
  for (int64_t t = 0; t < cols; ++t) {
    xb[t] = f32_to_bf16(x[t]);
    xr[t] = bf16_to_f32(xb[t]);
  }
  plora_cpu_gelu(xr.data(), cols, yr.data(), cols, PLORA_F32, 1, cols);
  plora_cpu_gelu(xb.data(), cols, yb.data(), cols, PLORA_BF16, 1, cols);
  int differ = 0;
  for (int64_t t = 0; t < cols; ++t) differ += yb[t] != f32_to_bf16(yr[t]);
  CHECK(differ == 0, "bf16 gelu: %d elements are not the rounded fp32 result", differ);
}

// Softmax cross-entropy against long double on wide rows (cols = 1001: the four-lane body and a
// tail) whose logits span ±80, so the exponentials cover 70 orders of magnitude.
static void test_softmax_xent_accuracy(std::mt19937_64& rng) {
  const int64_t rows = 3, cols = 1001;
  std::vector<float> x(rows * cols), grad(rows * cols, NAN);  // poisoned
  std::uniform_real_distribution<float> wide(-80.0f, 80.0f);
  for (float& v : x) v = wide(rng);
  const float labels[rows] = {0, 500, 1000};
  double loss = 0;
  int64_t bad = -1;
  CHECK(plora_cpu_softmax_xent(x.data(), cols, PLORA_F32, rows, cols, labels, &loss, grad.data(), cols, &bad) == PLORA_OK,
        "xent: %s", plora_cpu_last_error());
  long double ref_loss = 0;
  double worst = 0;
  for (int64_t i = 0; i < rows; ++i) {
    long double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < cols; ++j) mx = std::max(mx, static_cast<long double>(x[i * cols + j]));
    for (int64_t j = 0; j < cols; ++j) sum += std::exp(static_cast<long double>(x[i * cols + j]) - mx);
    const long double lse = mx + std::log(sum);
    ref_loss += lse - x[i * cols + static_cast<int64_t>(labels[i])];
    for (int64_t j = 0; j < cols; ++j) {
      const long double want = (std::exp(x[i * cols + j] - lse) - (j == labels[i] ? 1 : 0)) / rows;
      const double err = static_cast<double>(std::fabs(grad[i * cols + j] - want));
      worst = std::max(worst, err / std::max(static_cast<double>(std::fabs(want)), 1e-30));
    }
  }
  ref_loss /= rows;
  CHECK(std::all_of(grad.begin(), grad.end(), [](float v) { return std::isfinite(v); }),
        "xent wrote every gradient (they were NaN before)");
  CHECK(std::fabs(loss - static_cast<double>(ref_loss)) <= 1e-12 * std::fabs(static_cast<double>(ref_loss)),
        "xent loss %.17g vs long double %.17g", loss, static_cast<double>(ref_loss));
  CHECK(worst <= 1.2e-7, "xent gradient: worst relative error %.3g (fp32 rounding is 6e-8)", worst);
}

// The sum of squares of several tensors (mixed dtypes, a padded leading dimension, an empty one)
// is the sum of each tensor's, tensor by tensor in order: bit for bit what adding the single
// calls' results gives.
static void test_sum_squares_many(std::mt19937_64& rng) {
  Mat a(37, 129, 131, PLORA_F32, rng), b(5, 17, 17, PLORA_BF16, rng), c(0, 9, 9, PLORA_F32, rng), d(3, 1, 4, PLORA_F16, rng);
  Mat* ms[] = {&a, &b, &c, &d};
  int64_t x[4], ld[4], rows[4], cols[4];
  int dtypes[4];
  double expected = 0.0;
  for (int t = 0; t < 4; ++t) {
    x[t] = reinterpret_cast<int64_t>(ms[t]->ptr());
    dtypes[t] = ms[t]->dtype;
    ld[t] = ms[t]->ld;
    rows[t] = ms[t]->rows;
    cols[t] = ms[t]->cols;
    double one = -1.0;
    CHECK(plora_cpu_sum_squares(ms[t]->ptr(), dtypes[t], ld[t], rows[t], cols[t], &one) == PLORA_OK, "sum_squares");
    expected += one;
  }
  double got = -1.0;
  CHECK(plora_cpu_sum_squares_many(4, x, dtypes, ld, rows, cols, &got) == PLORA_OK, "sum_squares_many: %s",
        plora_cpu_last_error());
  CHECK(got == expected && got > 0, "sum_squares_many %.17g, the singles add to %.17g", got, expected);
  CHECK(plora_cpu_sum_squares_many(0, nullptr, nullptr, nullptr, nullptr, nullptr, &got) == PLORA_OK && got == 0.0,
        "no tensors: 0");
  CHECK(plora_cpu_sum_squares_many(-1, x, dtypes, ld, rows, cols, &got) == PLORA_ERR_INVALID, "count < 0 accepted");
  CHECK(plora_cpu_sum_squares_many(2, x, nullptr, ld, rows, cols, &got) == PLORA_ERR_INVALID, "a null table accepted");
  ld[1] = cols[1] - 1;
  CHECK(plora_cpu_sum_squares_many(4, x, dtypes, ld, rows, cols, &got) == PLORA_ERR_INVALID &&
            std::strstr(plora_cpu_last_error(), "tensor 1 of 4") != nullptr,
        "a bad tensor is refused by its index: %s", plora_cpu_last_error());
}

static void test_adamw(std::mt19937_64& rng) {
  // two tensors, 3 steps, against a double-precision replay of PyTorch's formula
  const int64_t rows[2] = {3, 5}, cols[2] = {7, 2};
  std::vector<float> p[2], g[2], m[2], v[2];
  std::vector<uint16_t> copy(5 * 4, 0);  // bf16 copy of tensor 1 with ld 4
  std::vector<double> pr[2], mr[2], vr[2];
  for (int i = 0; i < 2; ++i) {
    p[i] = random_floats(rows[i] * cols[i], rng);
    m[i].assign(p[i].size(), 0.0f);
    v[i].assign(p[i].size(), 0.0f);
    pr[i].assign(p[i].begin(), p[i].end());
    mr[i].assign(p[i].size(), 0.0);
    vr[i].assign(p[i].size(), 0.0);
  }
  const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f, gs = 0.5f, scale[2] = {1.0f, 4.0f};
  for (int step = 1; step <= 3; ++step) {
    for (int i = 0; i < 2; ++i) g[i] = random_floats(p[i].size(), rng);
    const double bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.999, step);
    int64_t params[2], grads[2], ms[2], vs[2], copies[2] = {0, (int64_t)copy.data()}, copy_ld[2] = {0, 4};
    for (int i = 0; i < 2; ++i) {
      params[i] = (int64_t)p[i].data(); grads[i] = (int64_t)g[i].data(); ms[i] = (int64_t)m[i].data(); vs[i] = (int64_t)v[i].data();
    }
    CHECK(plora_cpu_adamw(2, params, grads, ms, vs, copies, copy_ld, rows, cols, scale, PLORA_BF16, lr, b1, b2, eps, wd, gs,
                          (float)bc1, (float)bc2) == PLORA_OK, "adamw: %s", plora_cpu_last_error());
    for (int i = 0; i < 2; ++i)
      for (size_t e = 0; e < p[i].size(); ++e) {
        const double ge = (double)g[i][e] * gs, lri = (double)lr * scale[i];
        mr[i][e] = 0.9 * mr[i][e] + 0.1 * ge;
        vr[i][e] = 0.999 * vr[i][e] + 0.001 * ge * ge;
        pr[i][e] = pr[i][e] * (1 - lri * wd) - lri / bc1 * mr[i][e] / (std::sqrt(vr[i][e] / bc2) + 1e-8);
      }
  }
  for (int i = 0; i < 2; ++i)
    CHECK(relative_error(p[i].data(), cols[i], pr[i], rows[i], cols[i]) <= 1e-5, "adamw tensor %d: %g", i,
          relative_error(p[i].data(), cols[i], pr[i], rows[i], cols[i]));
  CHECK(copy[1 * 4 + 1] == f32_to_bf16(p[1][1 * 2 + 1]) && copy[3] == 0, "adamw writes the bf16 copy inside its ld");
}

static void test_model_ops(std::mt19937_64& rng) {
  Mat x(7, 9, 11, PLORA_F32, rng), t(7, 9, 10, PLORA_F32, rng);
  double sum = -1, ref = 0;
  CHECK(plora_cpu_sum_squares(x.ptr(), PLORA_F32, x.ld, 7, 9, &sum) == PLORA_OK, "sum_squares");
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 9; ++j) ref += (double)x.at(i, j) * x.at(i, j);
  CHECK(std::fabs(sum - ref) <= 1e-9 * ref, "sum_squares %g vs %g", sum, ref);
  // GELU: known values and the derivative against central differences
  float xs[4] = {-3.0f, -0.5f, 0.0f, 1.5f}, ys[4], ones[4] = {1, 1, 1, 1}, ds[4];
  plora_cpu_gelu(xs, 4, ys, 4, PLORA_F32, 1, 4);
  const double expected[4] = {-0.0040496, -0.1542688, 0.0, 1.3997949};
  for (int j = 0; j < 4; ++j) CHECK(std::fabs(ys[j] - expected[j]) < 1e-5, "gelu(%g) = %g", xs[j], ys[j]);
  plora_cpu_gelu_backward(xs, 4, ones, 4, ds, 4, PLORA_F32, 1, 4);
  for (int j = 0; j < 4; ++j) {
    double h = 1e-3, up = (xs[j] + h) * 0.5 * (1 + std::erf((xs[j] + h) / std::sqrt(2.0))),
           dn = (xs[j] - h) * 0.5 * (1 + std::erf((xs[j] - h) / std::sqrt(2.0)));
    CHECK(std::fabs(ds[j] - (up - dn) / (2 * h)) < 1e-4, "gelu'(%g) = %g", xs[j], ds[j]);
  }
  // MSE
  double loss = -1, lref = 0;
  std::vector<float> grad(7 * 9);
  CHECK(plora_cpu_mse(x.ptr(), x.ld, t.ptr(), t.ld, PLORA_F32, 7, 9, &loss, grad.data(), 9) == PLORA_OK, "mse");
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 9; ++j) lref += std::pow((double)x.at(i, j) - t.at(i, j), 2) / 63;
  CHECK(std::fabs(loss - lref) <= 1e-7 * lref, "mse %g vs %g", loss, lref);
  CHECK(std::fabs(grad[2 * 9 + 3] - 2 * (x.at(2, 3) - t.at(2, 3)) / 63) < 1e-7, "mse grad");
  // softmax cross-entropy
  float labels[7] = {0, 8, 3, 3, 1, 5, 2};
  std::vector<float> dl(7 * 9);
  int64_t bad = -1;
  CHECK(plora_cpu_softmax_xent(x.ptr(), x.ld, PLORA_F32, 7, 9, labels, &loss, dl.data(), 9, &bad) == PLORA_OK && bad == 0, "xent");
  lref = 0;
  for (int64_t i = 0; i < 7; ++i) {
    double se = 0;
    for (int64_t j = 0; j < 9; ++j) se += std::exp((double)x.at(i, j));
    lref += (std::log(se) - x.at(i, (int64_t)labels[i])) / 7;
    double p1 = std::exp((double)x.at(i, 1)) / se;
    CHECK(std::fabs(dl[i * 9 + 1] - (p1 - (labels[i] == 1 ? 1 : 0)) / 7) < 1e-7, "xent grad row %lld", (long long)i);
  }
  CHECK(std::fabs(loss - lref) <= 1e-9 * std::fabs(lref) + 1e-12, "xent %g vs %g", loss, lref);
  labels[2] = 9;
  labels[4] = 0.5f;
  std::fill(dl.begin(), dl.end(), NAN);
  CHECK(plora_cpu_softmax_xent(x.ptr(), x.ld, PLORA_F32, 7, 9, labels, &loss, dl.data(), 9, &bad) == PLORA_ERR_INVALID && bad == 2,
        "bad labels");
  CHECK(std::isnan(dl[0]), "nothing written for bad labels");
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

// No OpenBLAS is loaded in this process: the LAPACK entry points say so (they never load one
// themselves), and refuse bad shapes first.
static void test_lapack_without_openblas() {
  double a[6] = {1, 2, 3, 4, 5, 6}, s[2], u[4], vt[6];
  int info = -1;
  CHECK(plora_cpu_dgesdd(2, 3, a, 3, s, u, 2, vt, 3, &info) == PLORA_ERR_INVALID && info == 0,
        "dgesdd without OpenBLAS: info %d", info);
  CHECK(std::strstr(plora_cpu_last_error(), "LAPACKE_dgesdd") != nullptr, "message: %s", plora_cpu_last_error());
  CHECK(plora_cpu_dorthonormalize(3, 2, a, 2, &info) == PLORA_ERR_INVALID, "orthonormalize without OpenBLAS");
  CHECK(std::strstr(plora_cpu_last_error(), "LAPACKE_dgelqf") != nullptr, "message: %s", plora_cpu_last_error());
  CHECK(plora_cpu_dgesdd(2, 3, a, 2, s, u, 2, vt, 3, &info) == PLORA_ERR_INVALID &&
            std::strstr(plora_cpu_last_error(), "bad shape") != nullptr, "lda < cols refused: %s", plora_cpu_last_error());
  CHECK(plora_cpu_dorthonormalize(2, 3, a, 3, &info) == PLORA_ERR_INVALID &&
            std::strstr(plora_cpu_last_error(), "bad shape") != nullptr, "rows < cols refused: %s", plora_cpu_last_error());
}

// Results do not depend on the thread count, on either side of the size at which a kernel opens its
// parallel region (native/cpu/parallel.h): every output of one and of two threads, bit for bit.
static void test_thread_count_independence(std::mt19937_64& rng) {
  const int64_t cols = 257, k = 128, r = 16;  // shrink's work: m·k·16 multiply-adds
  for (int64_t rows : {kParallelWork / cols, kParallelWork / cols + 2}) {
    const int64_t m = kParallelWork / (k * r) + (rows * cols > kParallelWork ? 1 : 0);  // the same side
    Mat x(rows, cols, cols + 3, PLORA_BF16, rng), dy(rows, cols, cols, PLORA_BF16, rng), w(1, cols, cols, PLORA_BF16, rng);
    Mat a(r, k, k, PLORA_BF16, rng);
    std::vector<int32_t> targets(static_cast<size_t>(rows)), ids(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) {
      targets[i] = static_cast<int32_t>((i * 37) % cols);
      ids[i] = static_cast<int32_t>((i * 5) % 11);  // repeated ids: dtable rows summed over tokens
    }
    // every output of the kernels, as bytes
    auto outputs = [&](int threads) {
      omp_set_num_threads(threads);
      std::vector<uint16_t> y(rows * cols), dx(rows * cols), dlogits(rows * cols), s(m * r);
      std::vector<float> rstd(rows), dw(cols, 0.5f), dtable(11 * cols, 0.25f);
      double sum = 0, loss = 0;
      int64_t counted = 0;
      CHECK(plora_cpu_rmsnorm(x.ptr(), x.ld, w.ptr(), y.data(), cols, rstd.data(), PLORA_BF16, rows, cols, 1e-6f) ==
                PLORA_OK, "rmsnorm: %s", plora_cpu_last_error());
      CHECK(plora_cpu_rmsnorm_backward(x.ptr(), x.ld, w.ptr(), rstd.data(), dy.ptr(), dy.ld, dx.data(), cols, dw.data(),
                                       PLORA_BF16, rows, cols) == PLORA_OK, "rmsnorm_backward: %s", plora_cpu_last_error());
      CHECK(plora_cpu_sum_squares(x.ptr(), PLORA_BF16, x.ld, rows, cols, &sum) == PLORA_OK, "sum_squares");
      CHECK(plora_cpu_cross_entropy(x.ptr(), x.ld, PLORA_BF16, rows, cols, targets.data(), 1, -100, 0.5f, &loss, &counted,
                                    dlogits.data(), cols, nullptr) == PLORA_OK, "cross_entropy: %s", plora_cpu_last_error());
      CHECK(plora_cpu_embedding_backward(ids.data(), 1, dy.ptr(), dy.ld, PLORA_BF16, dtable.data(), cols, rows, 11, cols,
                                         nullptr) == PLORA_OK, "embedding_backward: %s", plora_cpu_last_error());
      CHECK(plora_cpu_shrink(x.ptr(), x.ld, a.ptr(), a.ld, s.data(), r, PLORA_BF16, m, k, r, 2.0f, 0.1f, 3, 4) == PLORA_OK,
            "shrink: %s", plora_cpu_last_error());
      std::vector<char> all;
      auto add = [&all](const void* p, size_t bytes) {
        all.insert(all.end(), static_cast<const char*>(p), static_cast<const char*>(p) + bytes);
      };
      add(y.data(), y.size() * 2);
      add(rstd.data(), rstd.size() * 4);
      add(dx.data(), dx.size() * 2);
      add(dw.data(), dw.size() * 4);
      add(&sum, sizeof sum);
      add(&loss, sizeof loss);
      add(dlogits.data(), dlogits.size() * 2);
      add(dtable.data(), dtable.size() * 4);
      add(s.data(), s.size() * 2);
      return all;
    };
    const int before = omp_get_max_threads();
    const std::vector<char> one = outputs(1), two = outputs(2);
    omp_set_num_threads(before);
    CHECK(one == two, "%lld x %lld (work %s the threshold %lld): 1 and 2 threads differ", (long long)rows,
          (long long)cols, rows * cols > kParallelWork ? "above" : "below", (long long)kParallelWork);
  }
}

int main() {
  std::mt19937_64 rng(42);
  test_philox_known_answers();
  test_half_conversions();
  for (int dtype : {PLORA_F32, PLORA_BF16, PLORA_F16})
    for (int64_t r : {1, 2, 8, 16, 64})
      for (float p : {0.0f, 0.1f, 0.5f}) test_shrink(r == 1 ? 1 : 37, 129, r, p, dtype, rng);
  for (int dtype : {PLORA_F32, PLORA_BF16, PLORA_F16})
    for (int64_t r : {1, 2, 8, 16, 64}) {
      test_dy_pass(r == 2 ? 1 : 23, 67, r, dtype, rng);
      for (float p : {0.0f, 0.1f}) {
        test_da_dx(r == 2 ? 1 : 23, 61, r, p, true, dtype, rng);
        test_da_dx(9, 19, r, p, false, dtype, rng);
      }
    }
  test_ops(rng);
  for (int w_dtype : {PLORA_F32, PLORA_BF16, PLORA_F16})
    for (int64_t r : {1, 2, 8, 16, 64}) test_merge(r == 2 ? 1 : 29, 37, r, w_dtype, rng);
  test_stochastic_merge();
  for (int rounding : {PLORA_ROUND_NEAREST, PLORA_ROUND_STOCHASTIC}) {
    test_merge_replays_bit_for_bit(PLORA_BF16, rounding, rng);
    test_merge_replays_bit_for_bit(PLORA_F16, rounding, rng);
    test_merge_rounding_edge_cases(rounding);
  }
  test_adamw(rng);
  test_model_ops(rng);
  test_gelu_accuracy();
  test_sum_squares_many(rng);
  test_softmax_xent_accuracy(rng);
  test_rejects_bad_arguments();
  test_lapack_without_openblas();
  test_thread_count_independence(rng);
  std::printf("%s (%d failures)\n", g_failures ? "FAILED" : "OK", g_failures);
  return g_failures ? 1 : 0;
}
