package dev.plora.lora;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The LoRA layer against a float64 reference, finite differences, and its own other paths. */
class LoraLinearTest {
  static Stream<Arguments> cases() {
    return BackendCases.names().flatMap(b -> Stream.of(DType.F32, DType.BF16).flatMap(d -> Stream.of(1, 2, 8, 16, 64)
        .flatMap(r -> Stream.of(0f, 0.1f).flatMap(p -> Stream.of(true, false).map(aug -> Arguments.of(b, d, r, p, aug))))));
  }

  /** A layer with random W, bias, A and B (B is random too: it starts at zero). */
  private static LoraLinear layer(TensorScope scope, SplittableRandom rng, int n, int k, DType dtype, LoraConfig config,
      int index) {
    Tensor w = scope.fromArray(Reference.random(rng, n * k, dtype), n, k, dtype);
    Tensor bias = scope.fromArray(Reference.random(rng, n, DType.F32), 1, n, DType.F32);
    LoraLinear layer = LoraLinear.create(w, bias, config, index);
    layer.adapter().loraB().copyFrom(Reference.random(rng, n * layer.r(), dtype));
    return layer;
  }

  /** x [M,K] as a plain tensor or inside an augmented [M,K+r] buffer. */
  private static Tensor input(TensorScope scope, LoraLinear layer, float[] x, int m, boolean augmented) {
    if (!augmented) {
      return scope.fromArray(x, m, layer.inFeatures(), layer.dtype());
    }
    Tensor xaug = scope.track(layer.allocateInput(m)).fill(Float.NaN);
    xaug.colsView(0, layer.inFeatures()).copyFrom(x);
    return xaug;
  }

  private static Tensor outputGrad(TensorScope scope, LoraLinear layer, float[] dy, int m, boolean augmented) {
    if (!augmented) {
      return scope.fromArray(dy, m, layer.outFeatures(), layer.dtype());
    }
    Tensor dyaug = scope.track(layer.allocateOutputGrad(m)).fill(Float.NaN);
    dyaug.colsView(0, layer.outFeatures()).copyFrom(dy);
    return dyaug;
  }

  @ParameterizedTest(name = "{0} {1} r={2} p={3} augmented={4}")
  @MethodSource("cases")
  void forwardAndBackwardMatchFloat64(String backendName, DType dtype, int r, float p, boolean augmented) {
    SplittableRandom rng = new SplittableRandom(r * 1000L + (long) (p * 10) + (augmented ? 7 : 0) + dtype.ordinal());
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      for (int m : new int[] {1, 37}) {
        int k = 53, n = 41;
        LoraConfig config = LoraConfig.builder().r(r).alpha(2f * r).dropout(p).seed(99).build();
        try (LoraLinear layer = layer(scope, rng, n, k, dtype, config, 3)) {
          float[] xv = Reference.random(rng, m * k, dtype);
          float[] dyv = Reference.random(rng, m * n, dtype);
          Tensor x = input(scope, layer, xv, m, augmented);
          Tensor y = scope.allocate(m, n, dtype).fill(Float.NaN);
          Tensor dx = scope.allocate(m, k, dtype).fill(Float.NaN);
          layer.forward(x, y);
          layer.backward(outputGrad(scope, layer, dyv, m, augmented), dx);

          LoraReference ref = new LoraReference(xv, layer.weight().toFloatArray(), layer.bias().toFloatArray(),
              layer.adapter().loraA().toFloatArray(), layer.adapter().loraB().toFloatArray(), dyv, m, k, n, r, layer.scaling(), p, 99,
              RngStreams.dropout(layer.adapter().step(), 3));
          String label = backendName + " " + dtype + " m=" + m + " r=" + r + " p=" + p + " augmented=" + augmented;
          double tol = Reference.tolerance(dtype);
          assertClose(ref.y, y.toFloatArray(), tol, label + " y");
          assertClose(ref.dx, dx.toFloatArray(), tol, label + " dx");
          assertClose(ref.dA, layer.adapter().gradA().toFloatArray(), tol, label + " dA");
          assertClose(ref.dB, layer.adapter().gradB().toFloatArray(), tol, label + " dB");
        }
      }
    }
  }

  private static void assertClose(double[] ref, float[] got, double tol, String label) {
    double err = Reference.relativeError(got, ref);
    assertTrue(err <= tol, label + ": relative error " + err + " > " + tol);
  }

  /** L = Σ y ⊙ g is linear in each of x, A, B: central differences are exact up to rounding. */
  @ParameterizedTest(name = "{0} p={1}")
  @MethodSource("finiteDifferenceCases")
  void gradientsMatchFiniteDifferences(String backendName, float p) {
    SplittableRandom rng = new SplittableRandom(17);
    int m = 5, k = 9, n = 7, r = 3;
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      LoraConfig config = LoraConfig.builder().r(r).alpha(4).dropout(p).seed(5).build();
      try (LoraLinear layer = layer(scope, rng, n, k, DType.F32, config, 0)) {
        float[] xv = Reference.random(rng, m * k, DType.F32);
        float[] g = Reference.random(rng, m * n, DType.F32);
        Tensor x = scope.fromArray(xv, m, k, DType.F32);
        layer.adapter().setStep(10);
        scope.track(layer.forward(x));
        Tensor dx = scope.track(layer.backward(scope.fromArray(g, m, n, DType.F32)));
        float[] analyticDx = dx.toFloatArray();
        float[] analyticA = layer.adapter().gradA().toFloatArray();
        float[] analyticB = layer.adapter().gradB().toFloatArray();
        double h = 0.25;
        for (int idx : new int[] {0, 4, 13, 26}) {
          assertEquals(analyticA[idx], difference(layer, layer.adapter().loraA(), idx, h, x, g), 1e-3, "dA[" + idx + "]");
        }
        for (int idx : new int[] {0, 5, 11, 20}) {
          assertEquals(analyticB[idx], difference(layer, layer.adapter().loraB(), idx, h, x, g), 1e-3, "dB[" + idx + "]");
        }
        for (int idx : new int[] {0, 8, 22, 44}) {
          assertEquals(analyticDx[idx], difference(layer, x, idx, h, x, g), 1e-3, "dx[" + idx + "]");
        }
      }
    }
  }

  static Stream<Arguments> finiteDifferenceCases() {
    return BackendCases.names().flatMap(b -> Stream.of(Arguments.of(b, 0f), Arguments.of(b, 0.3f)));
  }

  /** (L(v + h) − L(v − h)) / 2h for element idx of {@code param}, with the step's mask kept. */
  private static double difference(LoraLinear layer, Tensor param, int idx, double h, Tensor x, float[] g) {
    float[] v = param.toFloatArray();
    float original = v[idx];
    double[] losses = new double[2];
    for (int side = 0; side < 2; side++) {
      v[idx] = (float) (original + (side == 0 ? h : -h));
      param.copyFrom(v);
      layer.adapter().setStep(10);
      try (Tensor y = layer.forward(x)) {
        float[] yv = y.toFloatArray();
        double loss = 0;
        for (int i = 0; i < yv.length; i++) {
          loss += (double) yv[i] * g[i];
        }
        losses[side] = loss;
      }
    }
    v[idx] = original;
    param.copyFrom(v);
    return (losses[0] - losses[1]) / (2 * h);
  }

  @ParameterizedTest(name = "{0} p={1}")
  @MethodSource("finiteDifferenceCases")
  void augmentedAndFallbackPathsAgree(String backendName, float p) {
    SplittableRandom rng = new SplittableRandom(23);
    int m = 19, k = 33, n = 27, r = 8;
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      LoraConfig config = LoraConfig.builder().r(r).dropout(p).build();
      try (LoraLinear layer = layer(scope, rng, n, k, DType.F32, config, 1)) {
        float[] xv = Reference.random(rng, m * k, DType.F32);
        float[] dyv = Reference.random(rng, m * n, DType.F32);
        float[][] results = new float[2][];
        float[][] grads = new float[2][];
        for (int pass = 0; pass < 2; pass++) {
          boolean augmented = pass == 0;
          layer.adapter().zeroGrad();
          layer.adapter().setStep(4);
          Tensor y = scope.track(layer.forward(input(scope, layer, xv, m, augmented)));
          Tensor dx = scope.track(layer.backward(outputGrad(scope, layer, dyv, m, augmented)));
          results[pass] = concat(y.toFloatArray(), dx.toFloatArray());
          grads[pass] = concat(layer.adapter().gradA().toFloatArray(), layer.adapter().gradB().toFloatArray());
        }
        assertTrue(Reference.relativeError(results[1], toDouble(results[0])) <= 1e-6, "y and dx");
        assertTrue(Reference.relativeError(grads[1], toDouble(grads[0])) <= 1e-6, "dA and dB");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void dropoutMasksFollowTheStep(String backendName) {
    SplittableRandom rng = new SplittableRandom(29);
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      LoraConfig config = LoraConfig.builder().r(4).dropout(0.5f).build();
      try (LoraLinear layer = layer(scope, rng, 16, 32, DType.F32, config, 2)) {
        Tensor x = scope.fromArray(Reference.random(rng, 8 * 32, DType.F32), 8, 32, DType.F32);
        float[] first = scope.track(layer.forward(x)).toFloatArray();
        float[] second = scope.track(layer.forward(x)).toFloatArray();
        assertFalse(java.util.Arrays.equals(first, second), "each training step draws a new mask");
        layer.adapter().setStep(0);
        assertArrayEquals(first, scope.track(layer.forward(x)).toFloatArray(), "the same step, the same mask");
        layer.train(false);
        float[] eval1 = scope.track(layer.forward(x)).toFloatArray();
        assertArrayEquals(eval1, scope.track(layer.forward(x)).toFloatArray(), "eval mode has no dropout");
        assertEquals(1, layer.adapter().step());
      }
    }
  }

  static Stream<Arguments> dtypes() {
    return BackendCases.names().flatMap(b -> Stream.of(Arguments.of(b, DType.F32), Arguments.of(b, DType.BF16)));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("dtypes")
  void mergeKeepsOutputsAndUnmergeRestoresW(String backendName, DType dtype) {
    SplittableRandom rng = new SplittableRandom(31);
    int m = 11, k = 45, n = 23;
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      try (LoraLinear layer = layer(scope, rng, n, k, dtype, LoraConfig.builder().r(8).alpha(16).build(), 0)) {
        Tensor x = scope.fromArray(Reference.random(rng, m * k, dtype), m, k, dtype);
        float[] w0 = layer.weight().toFloatArray();
        float[] unmerged = scope.track(layer.forward(x)).toFloatArray();
        float[] delta = scope.track(layer.adapter().deltaWeight()).toFloatArray();
        double[] expectedDelta = Reference.gemm(false, layer.adapter().loraB().toFloatArray(), 8, false,
            layer.adapter().loraA().toFloatArray(), k, layer.scaling(), 0, null, n, k, 8);
        assertTrue(Reference.relativeError(delta, expectedDelta) <= 1e-5, "deltaWeight = s·B·A");
        double[] expectedEffective = new double[w0.length];
        for (int i = 0; i < w0.length; i++) {
          expectedEffective[i] = w0[i] + expectedDelta[i];
        }
        float[] effective = scope.track(layer.effectiveWeight()).toFloatArray();
        assertTrue(Reference.relativeError(effective, expectedEffective) <= 1e-5, "effectiveWeight = W + s·B·A");

        layer.merge();
        assertTrue(layer.isMerged());
        float[] merged = scope.track(layer.forward(x)).toFloatArray();
        assertTrue(Reference.relativeError(merged, toDouble(unmerged)) <= Reference.tolerance(dtype),
            "merged forward equals unmerged forward");
        assertThrows(IllegalStateException.class, () -> layer.backward(scope.allocate(m, n, dtype)));
        assertTrue(Reference.relativeError(scope.track(layer.effectiveWeight()).toFloatArray(), expectedEffective)
            <= Reference.tolerance(dtype), "a merged layer applies the same weight");

        layer.unmerge();
        float[] restored = layer.weight().toFloatArray();
        double tol = dtype == DType.F32 ? 1e-6 : 1e-2;
        assertTrue(Reference.relativeError(restored, toDouble(w0)) <= tol, "unmerge restores W");
        assertFalse(layer.isMerged());
      }
    }
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("dtypes")
  void refusedSafeMergeLeavesWBitIdentical(String backendName, DType dtype) {
    SplittableRandom rng = new SplittableRandom(37);
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      try (LoraLinear layer = layer(scope, rng, 13, 17, dtype, LoraConfig.builder().r(2).build(), 0)) {
        float[] b = layer.adapter().loraB().toFloatArray();
        b[5] = Float.NaN;
        b[6] = 3e38f; // overflows in W + s·B·A
        layer.adapter().loraB().copyFrom(b);
        int[] before = bits(layer.weight().toFloatArray());
        ArithmeticException e = assertThrows(ArithmeticException.class, () -> layer.merge(true));
        assertTrue(e.getMessage().contains("non-finite"), e.getMessage());
        assertArrayEquals(before, bits(layer.weight().toFloatArray()), "W changed by a refused merge");
        assertFalse(layer.isMerged());
        b[5] = 0.5f;
        b[6] = 0.25f;
        layer.adapter().loraB().copyFrom(b);
        float[] w0 = layer.weight().toFloatArray();
        float[] delta = scope.track(layer.adapter().deltaWeight()).toFloatArray();
        layer.merge(true);
        assertTrue(layer.isMerged());
        double[] expected = new double[w0.length];
        for (int i = 0; i < w0.length; i++) {
          expected[i] = (double) w0[i] + delta[i];
        }
        assertTrue(Reference.relativeError(layer.weight().toFloatArray(), expected) <= Reference.tolerance(dtype),
            "a safe merge that passes writes W + s·B·A");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void initialisationFollowsPeft(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend)) {
      Tensor w = scope.allocate(64, 400, DType.F32).fill(0.5f);
      try (LoraLinear kaiming = LoraLinear.create(w, null, LoraConfig.builder().r(16).seed(1).build(), 0);
          LoraLinear gaussian = LoraLinear.create(w, null,
              LoraConfig.builder().r(16).init(LoraConfig.Init.GAUSSIAN).seed(1).build(), 0)) {
        float bound = (float) (1 / Math.sqrt(400));
        double sum2 = 0;
        for (float v : kaiming.adapter().loraA().toFloatArray()) {
          assertTrue(v >= -bound && v < bound, "A outside the Kaiming bound: " + v);
          sum2 += v * v;
        }
        double var = sum2 / (16 * 400);
        assertEquals(bound * bound / 3, var, 0.1 * bound * bound / 3, "uniform variance");
        double g2 = 0;
        for (float v : gaussian.adapter().loraA().toFloatArray()) {
          g2 += v * v;
        }
        assertEquals(1.0 / 16, Math.sqrt(g2 / (16 * 400)), 0.05 / 16, "gaussian std 1/r");
        for (float v : kaiming.adapter().loraB().toFloatArray()) {
          assertEquals(0f, v);
        }
        float[] a0 = kaiming.adapter().loraA().toFloatArray();
        kaiming.adapter().reset();
        assertFalse(java.util.Arrays.equals(a0, kaiming.adapter().loraA().toFloatArray()), "a reset draws a fresh A");
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void badInputIsRefusedBeforeNativeCalls(String backendName) {
    SplittableRandom rng = new SplittableRandom(41);
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend);
        Backend other = new CpuBackend()) {
      try (LoraLinear layer = layer(scope, rng, 6, 10, DType.F32, LoraConfig.builder().r(2).build(), 0)) {
        Tensor y = scope.allocate(3, 6, DType.F32).fill(Float.NaN);
        IllegalStateException noForward = assertThrows(IllegalStateException.class,
            () -> layer.backward(scope.allocate(3, 6, DType.F32)));
        assertTrue(noForward.getMessage().contains("forward pass first"), noForward.getMessage());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
            () -> layer.forward(scope.allocate(3, 11, DType.F32), y));
        assertTrue(e.getMessage().contains("[3,11]") && e.getMessage().contains("[M,10]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> layer.forward(scope.allocate(3, 10, DType.BF16), y));
        assertTrue(e.getMessage().contains("BF16"), e.getMessage());
        try (Tensor foreign = other.allocate(3, 10, DType.F32)) {
          e = assertThrows(IllegalArgumentException.class, () -> layer.forward(foreign, y));
          assertTrue(e.getMessage().contains("belongs to backend"), e.getMessage());
        }
        Tensor closed = backend.allocate(3, 10, DType.F32);
        closed.close();
        assertThrows(IllegalStateException.class, () -> layer.forward(closed, y));
        for (float v : y.toFloatArray()) {
          assertTrue(Float.isNaN(v), "y written by a refused forward");
        }
        Tensor x = scope.fromArray(Reference.random(rng, 30, DType.F32), 3, 10, DType.F32);
        layer.forward(x, y);
        e = assertThrows(IllegalArgumentException.class, () -> layer.backward(scope.allocate(3, 5, DType.F32)));
        assertTrue(e.getMessage().contains("dy") && e.getMessage().contains("[3,5]") && e.getMessage().contains("[3,6]"),
            e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> layer.backward(scope.allocate(4, 6, DType.F32)));
        assertTrue(e.getMessage().contains("[4,6]"), e.getMessage());
        x.close();
        assertThrows(IllegalStateException.class, () -> layer.backward(scope.allocate(3, 6, DType.F32)));
      }
    }
  }

  /**
   * A refused forward or backward changes nothing: no dropout step consumed, no scratch columns
   * written, no gradient accumulated, so the next valid call gives what it would have given.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void refusedCallsChangeNothing(String backendName) {
    SplittableRandom rng = new SplittableRandom(43);
    LoraConfig config = LoraConfig.builder().r(3).dropout(0.25f).seed(5).build();
    float[] xs = Reference.random(rng, 4 * 9, DType.F32);
    float[] dys = Reference.random(rng, 4 * 7, DType.F32);
    try (Backend backend = BackendCases.open(backendName); TensorScope scope = new TensorScope(backend);
        Backend other = new CpuBackend()) {
      float[][] expected = null;
      for (boolean refuseFirst : new boolean[] {false, true}) {
        try (LoraLinear layer = layer(scope, new SplittableRandom(44), 7, 9, DType.F32, config, 0)) {
          Tensor x = input(scope, layer, xs, 4, true);
          Tensor y = scope.allocate(4, 7, DType.F32);
          Tensor dy = scope.track(layer.allocateOutputGrad(4)).fill(Float.NaN);
          dy.colsView(0, 7).copyFrom(dys);
          Tensor dx = scope.allocate(4, 9, DType.F32);
          if (refuseFirst) {
            float[] xBefore = x.toFloatArray();
            Tensor foreignY = scope.track(other.allocate(4, 7, DType.F32));
            for (Tensor bad : new Tensor[] {scope.allocate(4, 6, DType.F32), scope.allocate(5, 7, DType.F32),
                scope.allocate(4, 7, DType.F16), foreignY, x.colsView(0, 7)}) {
              assertThrows(IllegalArgumentException.class, () -> layer.forward(x, bad), "forward into " + bad);
            }
            assertThrows(IllegalArgumentException.class, () -> layer.forward(x, null));
            assertEquals(0, layer.adapter().step(), "a refused forward consumed a dropout step");
            assertArrayEquals(bits(xBefore), bits(x.toFloatArray()), "a refused forward wrote x's scratch columns");
          }
          layer.forward(x, y);
          if (refuseFirst) {
            Tensor foreignDx = scope.track(other.allocate(4, 9, DType.F32));
            for (Tensor bad : new Tensor[] {scope.allocate(4, 8, DType.F32), scope.allocate(3, 9, DType.F32),
                scope.allocate(4, 9, DType.BF16), foreignDx, x.colsView(0, 9), dy.colsView(0, 9)}) {
              assertThrows(IllegalArgumentException.class, () -> layer.backward(dy, bad), "backward into " + bad);
            }
            for (Tensor bad : new Tensor[] {scope.allocate(4, 8, DType.F32).fill(0f), scope.allocate(4, 7, DType.BF16)}) {
              assertThrows(IllegalArgumentException.class, () -> layer.backward(bad, dx), "backward of " + bad);
            }
            for (float g : concat(layer.adapter().gradA().toFloatArray(), layer.adapter().gradB().toFloatArray())) {
              assertEquals(0f, g, "a refused backward accumulated a gradient");
            }
          }
          layer.backward(dy, dx);
          float[][] got = {y.toFloatArray(), dx.toFloatArray(), layer.adapter().gradA().toFloatArray(),
              layer.adapter().gradB().toFloatArray()};
          if (expected == null) {
            expected = got;
          } else {
            for (int i = 0; i < got.length; i++) {
              assertArrayEquals(bits(expected[i]), bits(got[i]), "output " + i + " after refused calls");
            }
          }
        }
      }
    }
  }

  private static float[] concat(float[] a, float[] b) {
    float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static double[] toDouble(float[] v) {
    double[] d = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      d[i] = v[i];
    }
    return d;
  }

  private static int[] bits(float[] v) {
    int[] b = new int[v.length];
    for (int i = 0; i < v.length; i++) {
      b[i] = Float.floatToRawIntBits(v[i]);
    }
    return b;
  }
}
