package dev.plora.backend;

import static dev.plora.testing.Refusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.testing.BackendCases;
import dev.plora.testing.Reference;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Rotary position embedding against a float64 rotation, on every backend. */
class RopeTest {
  /** HF's default inverse frequencies θ^(−2j/d), in fp32 as HF computes them. */
  static float[] invFreq(int headDim, double theta) {
    float[] f = new float[headDim / 2];
    for (int j = 0; j < f.length; j++) {
      f[j] = (float) (1.0 / Math.pow(theta, 2.0 * j / headDim));
    }
    return f;
  }

  /** x rotated (or, backward, rotated by the negative angle), in float64 from fp32 angles. */
  static double[] rotate(float[] x, int rows, int heads, int headDim, int[] positions, float[] invFreq, boolean back) {
    int half = headDim / 2, cols = heads * headDim;
    double[] y = new double[x.length];
    for (int t = 0; t < rows; t++) {
      for (int j = 0; j < half; j++) {
        float angle = positions[t] * invFreq[j]; // the fp32 product, as HF forms it
        double c = Math.cos(angle), s = back ? -Math.sin(angle) : Math.sin(angle);
        for (int h = 0; h < heads; h++) {
          int i1 = t * cols + h * headDim + j, i2 = i1 + half;
          y[i1] = x[i1] * c - x[i2] * s;
          y[i2] = x[i2] * c + x[i1] * s;
        }
      }
    }
    return y;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void rotatesEachHeadByItsTokensPosition(String backendName) {
    SplittableRandom rng = new SplittableRandom(41);
    int[][] shapes = {{1, 1, 2}, {19, 3, 20}, {7, 2, 128}};
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (int[] shape : shapes) {
          int rows = shape[0], heads = shape[1], headDim = shape[2], cols = heads * headDim;
          int[] positions = new int[rows];
          for (int t = 0; t < rows; t++) {
            positions[t] = t < rows / 2 ? t : 3000 + t - rows / 2; // two packed sequences, one far along
          }
          float[] inv = invFreq(headDim, 10000);
          Tensor pos = s.fromInts(positions, rows, 1), invT = s.fromArray(inv, 1, headDim / 2, DType.F32);
          float[] x = Reference.random(rng, rows * cols, dtype);
          // q as a column view of a fused [rows, q | k | v] buffer
          Tensor fused = s.allocate(rows, cols + 2 * headDim + 5, dtype);
          Tensor q = fused.colsView(headDim, cols).copyFrom(x);
          Rope.forward(backend, q, heads, pos, invT);
          String what = dtype + " rows " + rows + " heads " + heads + " head_dim " + headDim;
          assertTrue(Reference.relativeError(q.toFloatArray(), rotate(x, rows, heads, headDim, positions, inv, false))
              <= Reference.tolerance(dtype), what + " forward");

          q.copyFrom(x);
          Rope.backward(backend, q, heads, pos, invT);
          assertTrue(Reference.relativeError(q.toFloatArray(), rotate(x, rows, heads, headDim, positions, inv, true))
              <= Reference.tolerance(dtype), what + " backward");
        }
      }
    }
  }

  /** BF16: each product and the sum round to bf16, and cos and sin too, as HF's rotate_half in bf16 does. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void bf16RoundsWhereHuggingFaceRounds(String backendName) {
    SplittableRandom rng = new SplittableRandom(43);
    int rows = 8, heads = 2, headDim = 16, half = headDim / 2, cols = heads * headDim;
    float[] inv = invFreq(headDim, 10000);
    float[] x = Reference.random(rng, rows * cols, DType.BF16);
    int[] positions = {0, 1, 2, 7, 30, 100, 1000, 5000};
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor q = s.fromArray(x, rows, cols, DType.BF16);
      Rope.forward(backend, q, heads, s.fromInts(positions, rows, 1), s.fromArray(inv, 1, half, DType.F32));
      float[] got = q.toFloatArray();
      DType b = DType.BF16;
      int exact = 0;
      for (int t = 0; t < rows; t++) {
        for (int j = 0; j < half; j++) {
          float angle = positions[t] * inv[j];
          float c = b.round((float) Math.cos(angle)), sn = b.round((float) Math.sin(angle));
          for (int h = 0; h < heads; h++) {
            int i1 = t * cols + h * headDim + j, i2 = i1 + half;
            float y1 = b.round(b.round(x[i1] * c) + b.round(-x[i2] * sn));
            float y2 = b.round(b.round(x[i2] * c) + b.round(x[i1] * sn));
            exact += (got[i1] == y1 ? 1 : 0) + (got[i2] == y2 ? 1 : 0);
          }
        }
      }
      // cos and sin in double may differ from Java's in the last fp32 bit, which can move a rounding
      assertTrue(exact >= rows * cols - 2, exact + " of " + rows * cols + " equal HF's bf16 rounding");
    }
  }

  /** The backward pass is the adjoint of the forward one: ⟨R x, y⟩ = ⟨x, Rᵀ y⟩. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void backwardIsTheAdjointOfForward(String backendName) {
    SplittableRandom rng = new SplittableRandom(42);
    int rows = 11, heads = 4, headDim = 16, n = rows * heads * headDim;
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      int[] positions = new int[rows];
      for (int t = 0; t < rows; t++) {
        positions[t] = 5 * t + 1;
      }
      Tensor pos = s.fromInts(positions, rows, 1), inv = s.fromArray(invFreq(headDim, 500000), 1, headDim / 2,
          DType.F32);
      float[] x = Reference.random(rng, n, DType.F32), y = Reference.random(rng, n, DType.F32);
      Tensor rx = s.fromArray(x, rows, heads * headDim, DType.F32), rty = s.fromArray(y, rows, heads * headDim,
          DType.F32);
      Rope.forward(backend, rx, heads, pos, inv);
      Rope.backward(backend, rty, heads, pos, inv);
      assertEquals(dot(rx.toFloatArray(), y), dot(x, rty.toFloatArray()), 1e-4);
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void refusesBadArguments(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor x = s.allocate(3, 12, DType.F32);
      Tensor pos = s.fromInts(new int[] {0, 1, 2}, 3, 1), inv = s.fromArray(new float[] {1, 0.1f, 0.01f}, 1, 3, DType.F32);
      assertRefused(IllegalArgumentException.class, () -> Rope.forward(backend, x, 4, pos, inv), "heads", "even");
      assertRefused(IllegalArgumentException.class, () -> Rope.forward(backend, x, 5, pos, inv), "heads");
      assertRefused(IllegalArgumentException.class, () -> Rope.forward(backend, x, 3, pos, inv), "invFreq", "[1,2]");
      assertRefused(IllegalArgumentException.class,
          () -> Rope.forward(backend, x, 2, s.allocate(3, 1, DType.F32), inv), "positions", "I32");
      assertRefused(IllegalArgumentException.class,
          () -> Rope.forward(backend, x, 2, s.fromInts(new int[] {0, 1}, 2, 1), inv), "positions", "[3,1]");
    }
  }

  private static double dot(float[] a, float[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += (double) a[i] * b[i];
    }
    return s;
  }
}
