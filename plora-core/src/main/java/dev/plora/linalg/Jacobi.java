package dev.plora.linalg;

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations, in double precision. */
public final class Jacobi {
  private Jacobi() {}

  /** Eigenvalues (unsorted, aligned with the columns of vectors) and, if asked, eigenvectors. */
  public record Eigen(double[] values, double[] vectors, int n) {}

  /**
   * Decomposes the symmetric n x n matrix {@code a} (row-major, destroyed). With
   * {@code withVectors}, column j of {@code vectors} (n x n, row-major) is the eigenvector of
   * {@code values[j]}.
   */
  public static Eigen decompose(double[] a, int n, boolean withVectors) {
    double[] v = null;
    if (withVectors) {
      v = new double[n * n];
      for (int i = 0; i < n; i++) {
        v[i * n + i] = 1;
      }
    }
    double total = 0;
    for (double x : a) {
      total += x * x;
    }
    for (int sweep = 0; sweep < 60; sweep++) {
      double off = 0;
      for (int p = 0; p < n; p++) {
        for (int q = p + 1; q < n; q++) {
          off += a[p * n + q] * a[p * n + q];
        }
      }
      if (off <= 1e-26 * total) {
        break;
      }
      for (int p = 0; p < n; p++) {
        for (int q = p + 1; q < n; q++) {
          double apq = a[p * n + q];
          if (Math.abs(apq) < 1e-300) {
            continue;
          }
          double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
          double t = theta == 0 ? 1 : Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
          double c = 1 / Math.sqrt(t * t + 1), s = t * c;
          for (int k = 0; k < n; k++) { // A ← A·J
            double akp = a[k * n + p], akq = a[k * n + q];
            a[k * n + p] = c * akp - s * akq;
            a[k * n + q] = s * akp + c * akq;
          }
          for (int k = 0; k < n; k++) { // A ← Jᵀ·A
            double apk = a[p * n + k], aqk = a[q * n + k];
            a[p * n + k] = c * apk - s * aqk;
            a[q * n + k] = s * apk + c * aqk;
          }
          if (v != null) { // V ← V·J
            for (int k = 0; k < n; k++) {
              double vkp = v[k * n + p], vkq = v[k * n + q];
              v[k * n + p] = c * vkp - s * vkq;
              v[k * n + q] = s * vkp + c * vkq;
            }
          }
        }
      }
    }
    double[] values = new double[n];
    for (int i = 0; i < n; i++) {
      values[i] = a[i * n + i];
    }
    return new Eigen(values, v, n);
  }
}
