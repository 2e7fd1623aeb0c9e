package dev.plora.linalg;

import dev.plora.backend.cpu.HostMatrix;
import dev.plora.backend.cpu.Lapack;

/**
 * The best rank-R factors of a matrix as LoRA wants them, from its truncated SVD ({@link
 * Svd#truncated}): {@code M ≈ B·A} with B = U·√Σ [m,R] and A = √Σ·Vᵀ [R,n].
 */
public final class LowRank {
  private LowRank() {}

  /** The factors, and the relative Frobenius error ‖M − B·A‖ / ‖M‖. */
  public record Factors(int rank, double[] b, double[] a, double[] singularValues, double relativeError) {}

  public static Factors truncatedSvd(double[] m, int rows, int cols, int rank, long seed) {
    Svd svd = Svd.truncated(m, rows, cols, rank, seed);
    double[] b = new double[rows * rank];
    double[] a = new double[rank * cols];
    for (int r = 0; r < rank; r++) {
      double root = Math.sqrt(svd.s()[r]);
      for (int i = 0; i < rows; i++) {
        b[i * rank + r] = svd.u()[i * rank + r] * root;
      }
      for (int c = 0; c < cols; c++) {
        a[r * cols + c] = root * svd.vt()[r * cols + c];
      }
    }
    return new Factors(rank, b, a, svd.s(), relativeError(m, rows, cols, rank, b, a));
  }

  /** ‖M − B·A‖ / ‖M‖ (0 for M = 0), with the product and the norms in OpenBLAS. */
  private static double relativeError(double[] m, int rows, int cols, int rank, double[] b, double[] a) {
    try (HostMatrix residual = HostMatrix.of(m, rows, cols); HostMatrix pb = HostMatrix.of(b, rows, rank);
        HostMatrix pa = HostMatrix.of(a, rank, cols)) {
      double norm = Lapack.norm(residual);
      Lapack.gemm(false, pb, false, pa, -1, 1, residual);
      return norm > 0 ? Lapack.norm(residual) / norm : 0;
    }
  }
}
