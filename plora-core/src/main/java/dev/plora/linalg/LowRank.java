package dev.plora.linalg;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Truncated SVD by randomized range finding (Halko, Martinsson and Tropp, 2011): a Gaussian
 * sketch with oversampling and power iterations, then an exact SVD of the small projected
 * matrix. Returns the rank-R factors as LoRA wants them: {@code M ≈ B·A} with B = U·√Σ [m,R]
 * and A = √Σ·Vᵀ [R,n].
 */
public final class LowRank {
  private LowRank() {}

  /** The factors, and the relative Frobenius error ‖M − B·A‖ / ‖M‖. */
  public record Factors(int rank, double[] b, double[] a, double[] singularValues, double relativeError) {}

  public static Factors truncatedSvd(double[] m, int rows, int cols, int rank, long seed) {
    if (rank < 1 || rank > Math.min(rows, cols)) {
      throw new IllegalArgumentException("rank: expected 1.." + Math.min(rows, cols) + ", got " + rank);
    }
    int k = Math.min(Math.min(rows, cols), rank + 10);
    SplittableRandom rng = new SplittableRandom(seed);
    double[] omega = new double[cols * k];
    for (int i = 0; i < omega.length; i++) {
      omega[i] = rng.nextDouble() * 2 - 1;
    }
    double[] y = multiply(m, rows, cols, omega, k, false); // [rows, k]
    orthonormalize(y, rows, k);
    for (int power = 0; power < 2; power++) { // sharpen slowly decaying spectra
      double[] z = multiply(m, rows, cols, y, k, true); // Mᵀ·Y [cols, k]
      orthonormalize(z, cols, k);
      y = multiply(m, rows, cols, z, k, false);
      orthonormalize(y, rows, k);
    }
    // S = Qᵀ·M [k, cols]; its SVD from the eigen-decomposition of S·Sᵀ [k, k]
    double[] s = new double[k * cols];
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < k; j++) {
        double q = y[i * k + j];
        if (q != 0) {
          for (int c = 0; c < cols; c++) {
            s[j * cols + c] += q * m[i * cols + c];
          }
        }
      }
    }
    double[] g = new double[k * k];
    for (int p = 0; p < k; p++) {
      for (int q = p; q < k; q++) {
        double d = 0;
        for (int c = 0; c < cols; c++) {
          d += s[p * cols + c] * s[q * cols + c];
        }
        g[p * k + q] = d;
        g[q * k + p] = d;
      }
    }
    Jacobi.Eigen eig = Jacobi.decompose(g, k, true);
    Integer[] order = new Integer[k];
    for (int i = 0; i < k; i++) {
      order[i] = i;
    }
    Arrays.sort(order, (p, q) -> Double.compare(eig.values()[q], eig.values()[p]));
    double[] sigma = new double[rank];
    double[] b = new double[rows * rank];
    double[] a = new double[rank * cols];
    for (int r = 0; r < rank; r++) {
      int e = order[r];
      sigma[r] = Math.sqrt(Math.max(eig.values()[e], 0));
      double root = Math.sqrt(sigma[r]);
      for (int i = 0; i < rows; i++) { // u = Q·w
        double u = 0;
        for (int j = 0; j < k; j++) {
          u += y[i * k + j] * eig.vectors()[j * k + e];
        }
        b[i * rank + r] = u * root;
      }
      for (int c = 0; c < cols; c++) { // v = Sᵀ·w / σ
        double v = 0;
        for (int j = 0; j < k; j++) {
          v += s[j * cols + c] * eig.vectors()[j * k + e];
        }
        a[r * cols + c] = sigma[r] > 0 ? v / sigma[r] * root : 0;
      }
    }
    double num = 0, den = 0;
    for (int i = 0; i < rows; i++) {
      for (int c = 0; c < cols; c++) {
        double approx = 0;
        for (int r = 0; r < rank; r++) {
          approx += b[i * rank + r] * a[r * cols + c];
        }
        double d = m[i * cols + c] - approx;
        num += d * d;
        den += m[i * cols + c] * m[i * cols + c];
      }
    }
    return new Factors(rank, b, a, sigma, den > 0 ? Math.sqrt(num / den) : 0);
  }

  /** M·X [rows, k] (X is [cols, k]), or with {@code transpose} Mᵀ·X [cols, k] (X is [rows, k]). */
  private static double[] multiply(double[] m, int rows, int cols, double[] x, int k, boolean transpose) {
    double[] out = new double[(transpose ? cols : rows) * k];
    for (int i = 0; i < rows; i++) {
      for (int c = 0; c < cols; c++) {
        double v = m[i * cols + c];
        if (v == 0) {
          continue;
        }
        int outRow = transpose ? c : i, inRow = transpose ? i : c;
        for (int j = 0; j < k; j++) {
          out[outRow * k + j] += v * x[inRow * k + j];
        }
      }
    }
    return out;
  }

  /** Orthonormal columns by modified Gram-Schmidt, twice (columns that vanish become zero). */
  private static void orthonormalize(double[] y, int rows, int k) {
    for (int pass = 0; pass < 2; pass++) {
      for (int j = 0; j < k; j++) {
        for (int p = 0; p < j; p++) {
          double d = 0;
          for (int i = 0; i < rows; i++) {
            d += y[i * k + p] * y[i * k + j];
          }
          for (int i = 0; i < rows; i++) {
            y[i * k + j] -= d * y[i * k + p];
          }
        }
        double norm = 0;
        for (int i = 0; i < rows; i++) {
          norm += y[i * k + j] * y[i * k + j];
        }
        norm = Math.sqrt(norm);
        for (int i = 0; i < rows; i++) {
          y[i * k + j] = norm > 1e-300 ? y[i * k + j] / norm : 0;
        }
      }
    }
  }
}
