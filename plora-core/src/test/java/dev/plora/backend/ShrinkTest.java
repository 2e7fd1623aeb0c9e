package dev.plora.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.testing.BackendCases;
import dev.plora.testing.Philox;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The fused LoRA shrink and its Philox dropout masks. */
class ShrinkTest {
  static Stream<Arguments> cases() {
    return BackendCases.names().flatMap(b -> Stream.of(BackendCases.floatDtypes()).flatMap(d -> Stream.of(1, 2, 8, 16, 64)
        .flatMap(r -> Stream.of(0f, 0.1f, 0.5f).map(p -> Arguments.of(b, d, r, p)))));
  }

  /**
   * Augmented layout: x is the first K columns of a buffer [M, K+r+pad], the shrink writes the
   * next r columns; the pad stays NaN. The reference applies the mask of an independent Philox.
   */
  @ParameterizedTest(name = "{0} {1} r={2} p={3}")
  @MethodSource("cases")
  void matchesFloat64Reference(String backendName, DType dtype, int r, float p) {
    SplittableRandom rng = new SplittableRandom(r * 31L + dtype.ordinal() + (long) (p * 100));
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      for (int m : new int[] {1, 45}) {
        int k = 131;
        int pad = 3;
        long seed = 0x1234_5678_9abcL + m, stream = 42L * r;
        float scaling = 2f / r;
        Tensor xaug = scope.allocate(m, k + r + pad, dtype).fill(Float.NaN);
        Tensor x = xaug.colsView(0, k);
        Tensor out = xaug.colsView(k, r);
        Tensor a = scope.allocate(r + 2, k + 7, dtype).view(1, 5, r, k);
        float[] xv = Reference.random(rng, m * k, dtype);
        float[] av = Reference.random(rng, r * k, dtype);
        x.copyFrom(xv);
        a.copyFrom(av);

        backend.shrink(x, a, scaling, new Dropout(p, seed, stream), out);

        double[] ref = new double[m * r];
        for (int i = 0; i < m; i++) {
          for (int j = 0; j < r; j++) {
            double acc = 0;
            for (int t = 0; t < k; t++) {
              double keep = Philox.keep(seed, stream, (long) i * k + t, p) ? 1.0 / (1.0 - p) : 0.0;
              acc += xv[i * k + t] * keep * av[j * k + t];
            }
            ref[i * r + j] = scaling * acc;
          }
        }
        String label = backendName + " " + dtype + " m=" + m + " r=" + r + " p=" + p;
        double err = Reference.relativeError(out.toFloatArray(), ref);
        assertTrue(err <= Reference.tolerance(dtype), label + ": relative error " + err);
        assertArrayEquals(xv, x.toFloatArray(), label + ": x changed");
        for (float v : xaug.colsView(k + r, pad).toFloatArray()) {
          assertTrue(Float.isNaN(v), label + ": shrink wrote past its r columns");
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void maskMatchesIndependentPhiloxAndKeepRate(String backendName) {
    int rows = 97, cols = 203;
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      for (float p : new float[] {0.1f, 0.5f}) {
        Tensor mask = scope.allocate(rows, cols, cols + 4, DType.F32).fill(Float.NaN);
        backend.dropoutMask(new Dropout(p, 7L, 3L), mask);
        float[] got = mask.toFloatArray();
        float keepValue = 1f / (1f - p);
        long kept = 0;
        for (int i = 0; i < got.length; i++) {
          boolean keep = Philox.keep(7L, 3L, i, p);
          assertEquals(keep ? keepValue : 0f, got[i], "p=" + p + " element " + i);
          kept += keep ? 1 : 0;
        }
        double n = got.length;
        double sigma = Math.sqrt(p * (1 - p) / n);
        double rate = kept / n;
        assertTrue(Math.abs(rate - (1 - p)) <= 4 * sigma, "p=" + p + ": keep rate " + rate + " vs " + (1 - p)
            + " (4 sigma = " + 4 * sigma + ")");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void sameKeysSameMaskOtherKeysOtherMask(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      float[] base = mask(backend, scope, new Dropout(0.3f, 11L, 5L));
      assertArrayEquals(base, mask(backend, scope, new Dropout(0.3f, 11L, 5L)), "same seed and stream");
      assertFalse(Arrays.equals(base, mask(backend, scope, new Dropout(0.3f, 12L, 5L))), "other seed");
      assertFalse(Arrays.equals(base, mask(backend, scope, new Dropout(0.3f, 11L, 6L))), "other stream");
    }
  }

  private static float[] mask(Backend backend, TensorScope scope, Dropout dropout) {
    Tensor t = scope.allocate(64, 77, DType.F32);
    backend.dropoutMask(dropout, t);
    return t.toFloatArray();
  }

  /** As in PyTorch's x·mask/(1−p), an infinity dropped by the mask still poisons the output (0·inf = NaN). */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void aDroppedInfinityStillPropagates(String backendName) {
    int m = 4, k = 64;
    float p = 0.5f;
    int dropped = -1;
    for (int i = 0; i < m * k && dropped < 0; i++) {
      if (!Philox.keep(9L, 1L, i, p)) {
        dropped = i;
      }
    }
    float[] xv = new float[m * k];
    Arrays.fill(xv, 0.5f);
    xv[dropped] = Float.POSITIVE_INFINITY;
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      Tensor x = scope.fromArray(xv, m, k, DType.F32);
      Tensor a = scope.allocate(2, k, DType.F32).fill(1f);
      Tensor out = scope.allocate(m, 2, DType.F32).fill(0f);
      backend.shrink(x, a, 1f, new Dropout(p, 9L, 1L), out);
      float[] o = out.toFloatArray();
      int row = dropped / k;
      assertTrue(Float.isNaN(o[row * 2]) && Float.isNaN(o[row * 2 + 1]), "row " + row + ": " + Arrays.toString(o));
      assertTrue(Float.isFinite(o[((row + 1) % m) * 2]), "other rows stay finite");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void zeroDropoutIsPlainProduct(String backendName) {
    SplittableRandom rng = new SplittableRandom(5);
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      int m = 33, k = 65, r = 8;
      float[] xv = Reference.random(rng, m * k, DType.F32);
      float[] av = Reference.random(rng, r * k, DType.F32);
      Tensor x = scope.fromArray(xv, m, k, DType.F32);
      Tensor a = scope.fromArray(av, r, k, DType.F32);
      Tensor viaShrink = scope.allocate(m, r, DType.F32).fill(Float.NaN);
      Tensor viaGemm = scope.allocate(m, r, DType.F32).fill(Float.NaN);
      backend.shrink(x, a, 0.5f, Dropout.NONE, viaShrink);
      backend.gemm(false, x, true, a, 0.5f, 0f, viaGemm);
      double[] ref = toDouble(viaGemm.toFloatArray());
      assertTrue(Reference.relativeError(viaShrink.toFloatArray(), ref) <= 1e-5);
    }
  }

  private static double[] toDouble(float[] v) {
    double[] d = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      d[i] = v[i];
    }
    return d;
  }
}
