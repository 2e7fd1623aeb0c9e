package dev.plora.testing;

import dev.plora.tensor.DType;
import java.util.Arrays;
import java.util.SplittableRandom;

/** Plain float64 references and helpers for the parity tests. */
public final class Reference {
  private Reference() {}

  /** Uniform values in [-1, 1), never all zero, rounded to {@code dtype} so the reference sees what is stored. */
  public static float[] random(SplittableRandom rng, int n, DType dtype) {
    float[] v = new float[n];
    for (int i = 0; i < n; i++) {
      v[i] = dtype.round((float) (rng.nextDouble() * 2 - 1));
    }
    return v;
  }

  public static float[] nans(int n) {
    float[] v = new float[n];
    Arrays.fill(v, Float.NaN);
    return v;
  }

  /** Element [i,j] of op(x) where x is row-major rows x cols. */
  public static double at(float[] x, int cols, boolean trans, int i, int j) {
    return trans ? x[j * cols + i] : x[i * cols + j];
  }

  /** alpha·op(a)·op(b) + beta·c in float64; a is [ar,ac], b is [br,bc], c is [m,n]. */
  public static double[] gemm(boolean transA, float[] a, int ac, boolean transB, float[] b, int bc, double alpha,
      double beta, float[] c, int m, int n, int k) {
    double[] out = new double[m * n];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double acc = 0;
        for (int t = 0; t < k; t++) {
          acc += at(a, ac, transA, i, t) * at(b, bc, transB, t, j);
        }
        out[i * n + j] = alpha * acc + (beta == 0 ? 0 : beta * c[i * n + j]);
      }
    }
    return out;
  }

  /** ‖out − ref‖ / ‖ref‖; infinite when out holds a NaN. */
  public static double relativeError(float[] out, double[] ref) {
    if (out.length != ref.length) {
      throw new AssertionError("length " + out.length + " != " + ref.length);
    }
    double num = 0, den = 0;
    for (int i = 0; i < out.length; i++) {
      double d = out[i] - ref[i];
      num += d * d;
      den += ref[i] * ref[i];
    }
    if (Double.isNaN(num)) {
      return Double.POSITIVE_INFINITY;
    }
    return Math.sqrt(num) / Math.max(Math.sqrt(den), Double.MIN_NORMAL);
  }

  /** Relative error tolerance for results stored in {@code dtype} (fp32 accumulation). */
  public static double tolerance(DType dtype) {
    return dtype == DType.F32 ? 1e-5 : 1e-2;
  }
}
