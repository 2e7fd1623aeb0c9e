package dev.plora.demo;

import dev.plora.linalg.Jacobi;
import java.util.Arrays;

/** Singular values of a dense matrix and the rank measures the demo reports. */
public final class Spectrum {
  private Spectrum() {}

  /**
   * Singular values of {@code m} (rows x cols, row-major), largest first: square roots of the
   * eigenvalues of mᵀm, found by cyclic Jacobi rotations in double precision.
   */
  public static double[] singularValues(double[] m, int rows, int cols) {
    double[] gram = new double[cols * cols];
    for (int i = 0; i < rows; i++) {
      for (int p = 0; p < cols; p++) {
        double a = m[i * cols + p];
        if (a == 0) {
          continue;
        }
        for (int q = p; q < cols; q++) {
          gram[p * cols + q] += a * m[i * cols + q];
        }
      }
    }
    for (int p = 0; p < cols; p++) {
      for (int q = 0; q < p; q++) {
        gram[p * cols + q] = gram[q * cols + p];
      }
    }
    double[] eig = Jacobi.decompose(gram, cols, false).values();
    double[] sv = new double[cols];
    for (int i = 0; i < cols; i++) {
      sv[i] = Math.sqrt(Math.max(eig[i], 0));
    }
    Arrays.sort(sv);
    for (int i = 0; i < cols / 2; i++) {
      double t = sv[i];
      sv[i] = sv[cols - 1 - i];
      sv[cols - 1 - i] = t;
    }
    return sv;
  }

  /** Entropy-based effective rank: exp(−Σ pᵢ ln pᵢ) with pᵢ = σᵢ / Σσ (Roy and Vetterli, 2007). */
  public static double effectiveRank(double[] sv) {
    double sum = 0;
    for (double s : sv) {
      sum += s;
    }
    if (sum <= 0) {
      return 0;
    }
    double h = 0;
    for (double s : sv) {
      if (s > 0) {
        double p = s / sum;
        h -= p * Math.log(p);
      }
    }
    return Math.exp(h);
  }

  /** Singular values above {@code fraction} of the largest. */
  public static int rankAbove(double[] sv, double fraction) {
    double max = 0;
    for (double s : sv) {
      max = Math.max(max, s);
    }
    int count = 0;
    for (double s : sv) {
      if (max > 0 && s > fraction * max) {
        count++;
      }
    }
    return count;
  }
}
