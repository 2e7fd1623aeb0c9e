package dev.plora.backend;

import static dev.plora.testing.Refusals.assertAllNaN;
import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** SwiGLU against a float64 reference, on every backend; its gradient also by finite differences. */
class SwiGluTest {
  private static final int[][] SHAPES = {{1, 1}, {17, 29}, {5, 300}};

  static double silu(double g) {
    return g / (1 + Math.exp(-g));
  }

  static double siluDerivative(double g) {
    double s = 1 / (1 + Math.exp(-g));
    return s * (1 + g * (1 - s));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void forwardAndBackwardMatchFloat64(String backendName) {
    SplittableRandom rng = new SplittableRandom(21);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (int[] shape : SHAPES) {
          int rows = shape[0], cols = shape[1], n = rows * cols;
          float[] gate = RmsNormTest.scaled(rng, n, dtype, 6f), up = RmsNormTest.scaled(rng, n, dtype, 2f);
          float[] dh = Reference.random(rng, n, dtype);
          Tensor g = RmsNormTest.strided(s, gate, rows, cols, dtype), u = RmsNormTest.strided(s, up, rows, cols, dtype);
          Tensor h = RmsNormTest.strided(s, Reference.nans(n), rows, cols, dtype);
          SwiGlu.forward(backend, g, u, h);
          Tensor dht = RmsNormTest.strided(s, dh, rows, cols, dtype);
          Tensor dg = RmsNormTest.strided(s, Reference.nans(n), rows, cols, dtype);
          Tensor du = RmsNormTest.strided(s, Reference.nans(n), rows, cols, dtype);
          SwiGlu.backward(backend, g, u, dht, dg, du);
          double[] hRef = new double[n], dgRef = new double[n], duRef = new double[n];
          for (int i = 0; i < n; i++) {
            hRef[i] = silu(gate[i]) * up[i];
            dgRef[i] = dh[i] * up[i] * siluDerivative(gate[i]);
            duRef[i] = dh[i] * silu(gate[i]);
          }
          String what = dtype + " [" + rows + "," + cols + "]";
          assertTrue(Reference.relativeError(h.toFloatArray(), hRef) <= Reference.tolerance(dtype), what + " h");
          assertTrue(Reference.relativeError(dg.toFloatArray(), dgRef) <= Reference.tolerance(dtype), what + " dgate");
          assertTrue(Reference.relativeError(du.toFloatArray(), duRef) <= Reference.tolerance(dtype), what + " dup");

          // in place: h over gate; dgate over gate and dup over up
          Tensor g2 = RmsNormTest.strided(s, gate, rows, cols, dtype), u2 = RmsNormTest.strided(s, up, rows, cols, dtype);
          SwiGlu.backward(backend, g2, u2, dht, g2, u2);
          assertArrayEquals(dg.toFloatArray(), g2.toFloatArray(), what + ": dgate in place");
          assertArrayEquals(du.toFloatArray(), u2.toFloatArray(), what + ": dup in place");
          Tensor g3 = RmsNormTest.strided(s, gate, rows, cols, dtype);
          SwiGlu.forward(backend, g3, u, g3);
          assertArrayEquals(h.toFloatArray(), g3.toFloatArray(), what + ": h in place");
        }
      }
    }
  }

  /** HF rounds silu(gate) to the model dtype before the product: the kernel does the same. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void bf16RoundsWhereHuggingFaceRounds(String backendName) {
    SplittableRandom rng = new SplittableRandom(22);
    int n = 64;
    float[] gate = RmsNormTest.scaled(rng, n, DType.BF16, 4f), up = RmsNormTest.scaled(rng, n, DType.BF16, 4f);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor h = s.fromArray(Reference.nans(n), 1, n, DType.BF16);
      SwiGlu.forward(backend, s.fromArray(gate, 1, n, DType.BF16), s.fromArray(up, 1, n, DType.BF16), h);
      float[] got = h.toFloatArray();
      int exact = 0;
      for (int i = 0; i < n; i++) {
        float act = DType.BF16.round((float) silu(gate[i]));
        float want = DType.BF16.round(act * up[i]);
        exact += got[i] == want ? 1 : 0;
      }
      // silu in fp32 may differ from float64 in its last bit, which can move a bf16 rounding
      assertTrue(exact >= n - 2, exact + " of " + n + " elements equal HF's double rounding");
    }
  }

  @Test
  void referenceGradientIsTheFiniteDifference() {
    for (double g : new double[] {-7.5, -1.25, -0.1, 0, 0.3, 2, 9}) {
      double h = 1e-5;
      assertEquals(siluDerivative(g), (silu(g + h) - silu(g - h)) / (2 * h), 1e-8, "silu'(" + g + ")");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void refusesBadArgumentsBeforeWriting(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor g = s.fromArray(new float[] {1, 2, 3, 4}, 2, 2, DType.F32);
      Tensor u = s.fromArray(new float[] {1, 2, 3, 4}, 2, 2, DType.F32);
      Tensor h = s.fromArray(Reference.nans(4), 2, 2, DType.F32);
      assertRefused(IllegalArgumentException.class, () -> SwiGlu.forward(backend, g, s.allocate(2, 3, DType.F32), h),
          "up", "[2,2]");
      assertRefused(IllegalArgumentException.class, () -> SwiGlu.forward(backend, g, u, s.allocate(2, 2, DType.BF16)),
          "h", "BF16");
      assertRefused(IllegalArgumentException.class, () -> SwiGlu.backward(backend, g, u, h, h, s.allocate(2, 2,
          DType.F32)), "dgate", "overlaps");
      assertRefused(IllegalArgumentException.class, () -> SwiGlu.forward(backend, g, u,
          s.fromInts(new int[] {1, 2, 3, 4}, 2, 2)), "I32");
      assertAllNaN(h);
    }
  }
}
