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

/** RMSNorm against a float64 reference, on every backend; its gradient also by finite differences. */
class RmsNormTest {
  private static final int[][] SHAPES = {{1, 5}, {37, 64}, {9, 67}, {3, 300}};

  /** Strided storage ([rows, cols + 3], a view at column 1) holding {@code values}. */
  static Tensor strided(TensorScope s, float[] values, int rows, int cols, DType dtype) {
    return s.allocate(rows, cols + 3, dtype).view(0, 1, rows, cols).copyFrom(values);
  }

  static float[] scaled(SplittableRandom rng, int n, DType dtype, float scale) {
    float[] v = Reference.random(rng, n, DType.F32);
    for (int i = 0; i < n; i++) {
      v[i] = dtype.round(v[i] * scale);
    }
    return v;
  }

  /** y = w·x·rstd and rstd per row, in float64. */
  static double[][] forward(float[] x, float[] w, int rows, int cols, double eps) {
    double[] y = new double[rows * cols], rstd = new double[rows];
    for (int i = 0; i < rows; i++) {
      double ss = 0;
      for (int j = 0; j < cols; j++) {
        ss += (double) x[i * cols + j] * x[i * cols + j];
      }
      rstd[i] = 1 / Math.sqrt(ss / cols + eps);
      for (int j = 0; j < cols; j++) {
        y[i * cols + j] = w[j] * x[i * cols + j] * rstd[i];
      }
    }
    return new double[][] {y, rstd};
  }

  /** dx and dw (without the initial dw) of L = Σ dy·y, in float64. */
  static double[][] backward(float[] x, float[] w, float[] dy, int rows, int cols, double eps) {
    double[] rstd = forward(x, w, rows, cols, eps)[1];
    double[] dx = new double[rows * cols], dw = new double[cols];
    for (int i = 0; i < rows; i++) {
      double dot = 0;
      for (int j = 0; j < cols; j++) {
        dot += (double) dy[i * cols + j] * w[j] * x[i * cols + j] * rstd[i];
      }
      for (int j = 0; j < cols; j++) {
        double xh = x[i * cols + j] * rstd[i];
        dx[i * cols + j] = rstd[i] * ((double) dy[i * cols + j] * w[j] - xh * dot / cols);
        dw[j] += dy[i * cols + j] * xh;
      }
    }
    return new double[][] {dx, dw};
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void forwardMatchesFloat64(String backendName) {
    SplittableRandom rng = new SplittableRandom(11);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (int[] shape : SHAPES) {
          int rows = shape[0], cols = shape[1];
          float eps = 1e-5f;
          float[] x = scaled(rng, rows * cols, dtype, 3f), w = scaled(rng, cols, dtype, 2f);
          Tensor xt = strided(s, x, rows, cols, dtype);
          Tensor wt = s.fromArray(w, 1, cols, dtype);
          Tensor y = strided(s, Reference.nans(rows * cols), rows, cols, dtype);
          Tensor rstd = s.fromArray(Reference.nans(rows), rows, 1, DType.F32);
          RmsNorm.forward(backend, xt, wt, eps, y, rstd);
          double[][] ref = forward(x, w, rows, cols, eps);
          String what = dtype + " [" + rows + "," + cols + "]";
          assertTrue(Reference.relativeError(y.toFloatArray(), ref[0]) <= Reference.tolerance(dtype), what + " y");
          assertTrue(Reference.relativeError(rstd.toFloatArray(), ref[1]) <= 1e-6, what + " rstd");

          Tensor inPlace = strided(s, x, rows, cols, dtype);
          RmsNorm.forward(backend, inPlace, wt, eps, inPlace, null);
          assertArrayEquals(y.toFloatArray(), inPlace.toFloatArray(), what + ": in place equals out of place");
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void backwardMatchesFloat64(String backendName) {
    SplittableRandom rng = new SplittableRandom(12);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      for (DType dtype : BackendCases.floatDtypes()) {
        for (int[] shape : SHAPES) {
          int rows = shape[0], cols = shape[1];
          float eps = 1e-6f;
          float[] x = scaled(rng, rows * cols, dtype, 3f), w = scaled(rng, cols, dtype, 2f);
          float[] dy = Reference.random(rng, rows * cols, dtype), dw0 = Reference.random(rng, cols, DType.F32);
          Tensor xt = strided(s, x, rows, cols, dtype);
          Tensor wt = s.fromArray(w, 1, cols, dtype);
          Tensor rstd = s.allocate(rows, 1, DType.F32);
          RmsNorm.forward(backend, xt, wt, eps, strided(s, Reference.nans(rows * cols), rows, cols, dtype), rstd);
          Tensor dyt = strided(s, dy, rows, cols, dtype);
          Tensor dx = strided(s, Reference.nans(rows * cols), rows, cols, dtype);
          Tensor dw = s.fromArray(dw0, 1, cols, DType.F32);
          RmsNorm.backward(backend, xt, wt, rstd, dyt, dx, dw);
          double[][] ref = backward(x, w, dy, rows, cols, eps);
          for (int j = 0; j < cols; j++) {
            ref[1][j] += dw0[j];
          }
          String what = dtype + " [" + rows + "," + cols + "]";
          assertTrue(Reference.relativeError(dx.toFloatArray(), ref[0]) <= Reference.tolerance(dtype), what + " dx");
          assertTrue(Reference.relativeError(dw.toFloatArray(), ref[1]) <= Reference.tolerance(dtype), what + " dw");

          Tensor inPlace = strided(s, dy, rows, cols, dtype); // dx = dy, frozen weight
          RmsNorm.backward(backend, xt, wt, rstd, inPlace, inPlace, null);
          assertArrayEquals(dx.toFloatArray(), inPlace.toFloatArray(), what + ": dx in place equals out of place");
        }
      }
    }
  }

  /** BF16: x·rstd rounds to bf16 before the weight multiplies, and the product rounds again, as in HF. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void bf16RoundsWhereHuggingFaceRounds(String backendName) {
    SplittableRandom rng = new SplittableRandom(14);
    int rows = 6, cols = 40;
    float eps = 1e-6f;
    float[] x = scaled(rng, rows * cols, DType.BF16, 3f), w = scaled(rng, cols, DType.BF16, 2f);
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor y = s.fromArray(Reference.nans(rows * cols), rows, cols, DType.BF16);
      RmsNorm.forward(backend, s.fromArray(x, rows, cols, DType.BF16), s.fromArray(w, 1, cols, DType.BF16), eps, y,
          null);
      float[] got = y.toFloatArray();
      double[] rstd = forward(x, w, rows, cols, eps)[1];
      int exact = 0;
      for (int i = 0; i < rows; i++) {
        float r = (float) rstd[i];
        for (int j = 0; j < cols; j++) {
          float want = DType.BF16.round(w[j] * DType.BF16.round(x[i * cols + j] * r));
          exact += got[i * cols + j] == want ? 1 : 0;
        }
      }
      // rstd from another summation order may differ in its last bit, which can move a rounding
      assertTrue(exact >= rows * cols - 2, exact + " of " + rows * cols + " equal HF's bf16 rounding");
    }
  }

  /** The float64 reference's gradient agrees with central differences of L = Σ dy·y. */
  @Test
  void referenceGradientIsTheFiniteDifference() {
    SplittableRandom rng = new SplittableRandom(13);
    int rows = 2, cols = 7;
    double eps = 1e-5, h = 1e-3;
    float[] x = scaled(rng, rows * cols, DType.F32, 2f), w = scaled(rng, cols, DType.F32, 2f);
    float[] dy = Reference.random(rng, rows * cols, DType.F32);
    double[][] grad = backward(x, w, dy, rows, cols, eps);
    for (int e = 0; e < rows * cols + cols; e++) {
      float[] xp = x.clone(), xm = x.clone(), wp = w.clone(), wm = w.clone();
      boolean isX = e < rows * cols;
      float base = isX ? x[e] : w[e - rows * cols];
      float step = (float) h;
      if (isX) {
        xp[e] = base + step;
        xm[e] = base - step;
      } else {
        wp[e - rows * cols] = base + step;
        wm[e - rows * cols] = base - step;
      }
      double fd = (loss(xp, wp, dy, rows, cols, eps) - loss(xm, wm, dy, rows, cols, eps))
          / ((double) (base + step) - (double) (base - step));
      double analytic = isX ? grad[0][e] : grad[1][e - rows * cols];
      assertEquals(analytic, fd, 1e-4 * Math.max(1, Math.abs(analytic)), "element " + e);
    }
  }

  private static double loss(float[] x, float[] w, float[] dy, int rows, int cols, double eps) {
    double[] y = forward(x, w, rows, cols, eps)[0];
    double l = 0;
    for (int i = 0; i < y.length; i++) {
      l += dy[i] * y[i];
    }
    return l;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("dev.plora.testing.BackendCases#names")
  void refusesBadArgumentsBeforeWriting(String backendName) {
    try (Backend backend = BackendCases.open(backendName); TensorScope s = new TensorScope(backend)) {
      Tensor x = s.fromArray(new float[] {1, 2, 3, 4, 5, 6}, 2, 3, DType.F32);
      Tensor w = s.fromArray(new float[] {1, 1, 1}, 1, 3, DType.F32);
      Tensor y = s.fromArray(Reference.nans(6), 2, 3, DType.F32);
      assertRefused(IllegalArgumentException.class, () -> RmsNorm.forward(backend, x, w, 0f, y, null), "eps");
      assertRefused(IllegalArgumentException.class,
          () -> RmsNorm.forward(backend, x, s.allocate(1, 4, DType.F32), 1e-5f, y, null), "w", "[1,3]");
      assertRefused(IllegalArgumentException.class,
          () -> RmsNorm.forward(backend, x, w, 1e-5f, y, s.allocate(2, 1, DType.BF16)), "rstd", "F32");
      assertRefused(IllegalArgumentException.class,
          () -> RmsNorm.forward(backend, x, w, 1e-5f, s.allocate(2, 3, DType.BF16), null), "y", "BF16");
      assertAllNaN(y);
      Tensor rstd = s.allocate(2, 1, DType.F32);
      Tensor dx = s.fromArray(Reference.nans(6), 2, 3, DType.F32);
      assertRefused(IllegalArgumentException.class, () -> RmsNorm.backward(backend, x, w, rstd, x, dx,
          s.allocate(1, 3, DType.BF16)), "dw", "F32");
      assertRefused(IllegalArgumentException.class, () -> RmsNorm.backward(backend, x, w, rstd, y, x, null), "dx",
          "overlaps");
      assertAllNaN(dx);
    }
  }
}
