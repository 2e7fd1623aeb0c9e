package dev.plora.linalg;

import java.util.SplittableRandom;
import dev.plora.backend.cpu.Lapack;
import org.bytedeco.javacpp.DoublePointer;

/**
 * A singular value decomposition M ≈ U·diag(s)·Vᵀ of a dense row-major matrix, in double
 * precision through LAPACK: {@code u} [rows, rank] and {@code vt} [rank, cols] with orthonormal
 * columns and rows, {@code s} descending.
 */
public record Svd(int rows, int cols, int rank, double[] u, double[] s, double[] vt) {
  /** Columns added to the sketch of a randomized SVD beyond the rank asked for. */
  private static final int OVERSAMPLING = 10;
  /** Power iterations of a randomized SVD: they sharpen slowly decaying spectra. */
  private static final int POWER_ITERATIONS = 2;
  /**
   * The randomized SVD runs when its sketch is at most 1/2 the matrix's width: dgesdd of a whole
   * n x n matrix took 1.1, 5.6 and 22 s at n = 512, 1024 and 2048 (2 cores), the randomized
   * rank-64 SVD 0.11, 0.15 and 1.3 s. Nearer full rank, the exact SVD is both exact and cheap.
   */
  private static final int SKETCH_RATIO = 2;

  /** The min(rows, cols) singular values of {@code m} [rows, cols], descending (LAPACK dgesdd). */
  public static double[] singularValues(double[] m, int rows, int cols) {
    checkMatrix(m, rows, cols);
    int k = Math.min(rows, cols);
    try (DoublePointer a = new DoublePointer(m); DoublePointer s = new DoublePointer(k)) {
      Lapack.gesdd(rows, cols, a, s, null, null);
      return toArray(s, k);
    }
  }

  /** The exact thin SVD of {@code m} [rows, cols], rank = min(rows, cols) (LAPACK dgesdd). */
  public static Svd thin(double[] m, int rows, int cols) {
    checkMatrix(m, rows, cols);
    return exact(m, rows, cols, Math.min(rows, cols));
  }

  /**
   * The {@code rank} leading singular triplets of {@code m} [rows, cols]. A matrix much larger
   * than the rank goes through a randomized range finder (Halko, Martinsson and Tropp, 2011: a
   * Gaussian sketch of rank + 10 columns drawn from {@code seed}, two power iterations) and the
   * exact SVD of its projection; a smaller one through the exact SVD of the whole matrix.
   */
  public static Svd truncated(double[] m, int rows, int cols, int rank, long seed) {
    checkMatrix(m, rows, cols);
    int min = Math.min(rows, cols);
    if (rank < 1 || rank > min) {
      throw new IllegalArgumentException("rank: expected 1.." + min + " for a " + rows + " x " + cols
          + " matrix, got " + rank);
    }
    int k = Math.min(min, rank + OVERSAMPLING);
    return (long) k * SKETCH_RATIO <= min ? randomized(m, rows, cols, rank, k, seed) : exact(m, rows, cols, rank);
  }

  private static Svd exact(double[] m, int rows, int cols, int rank) {
    int k = Math.min(rows, cols);
    try (DoublePointer a = new DoublePointer(m); DoublePointer s = new DoublePointer(k);
        DoublePointer u = new DoublePointer((long) rows * k); DoublePointer vt = new DoublePointer((long) k * cols)) {
      Lapack.gesdd(rows, cols, a, s, u, vt);
      return new Svd(rows, cols, rank, columns(u, rows, k, rank), toArray(s, rank), toArray(vt, (long) rank * cols));
    }
  }

  private static Svd randomized(double[] m, int rows, int cols, int rank, int k, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    double[] omega = new double[cols * k];
    for (int i = 0; i < omega.length; i++) {
      omega[i] = rng.nextGaussian();
    }
    try (DoublePointer a = new DoublePointer(m); DoublePointer z = new DoublePointer(omega);
        DoublePointer q = new DoublePointer((long) rows * k); DoublePointer b = new DoublePointer((long) k * cols);
        DoublePointer s = new DoublePointer(k); DoublePointer ub = new DoublePointer((long) k * k);
        DoublePointer vt = new DoublePointer((long) k * cols); DoublePointer u = new DoublePointer((long) rows * k)) {
      Lapack.gemm(false, a, false, z, 1, 0, q, rows, k, cols); // Q = orth(M·Ω) [rows, k]
      Lapack.orthonormalize(rows, k, q);
      for (int power = 0; power < POWER_ITERATIONS; power++) {
        Lapack.gemm(true, a, false, q, 1, 0, z, cols, k, rows); // Z = orth(Mᵀ·Q) [cols, k]
        Lapack.orthonormalize(cols, k, z);
        Lapack.gemm(false, a, false, z, 1, 0, q, rows, k, cols); // Q = orth(M·Z)
        Lapack.orthonormalize(rows, k, q);
      }
      Lapack.gemm(true, q, false, a, 1, 0, b, k, cols, rows); // B = Qᵀ·M [k, cols] = Ub·S·Vᵀ
      Lapack.gesdd(k, cols, b, s, ub, vt);
      Lapack.gemm(false, q, false, ub, 1, 0, u, rows, k, k); // U = Q·Ub
      return new Svd(rows, cols, rank, columns(u, rows, k, rank), toArray(s, rank), toArray(vt, (long) rank * cols));
    }
  }

  /** Refuses what LAPACK must not see: a null or mis-sized array, an empty shape, NaN or ±∞. */
  static void checkMatrix(double[] m, int rows, int cols) {
    if (m == null) {
      throw new IllegalArgumentException("m: expected a " + rows + " x " + cols + " matrix, got null");
    }
    if (rows < 1 || cols < 1) {
      throw new IllegalArgumentException("rows, cols: expected both ≥ 1, got " + rows + " x " + cols);
    }
    if ((long) rows * cols != m.length) {
      throw new IllegalArgumentException("m: expected " + (long) rows * cols + " values for " + rows + " x " + cols
          + ", got " + m.length);
    }
    for (int i = 0; i < m.length; i++) {
      if (!Double.isFinite(m[i])) {
        throw new IllegalArgumentException("m: expected finite values, got " + m[i] + " at [" + i / cols + ", "
            + i % cols + "]");
      }
    }
  }

  private static double[] toArray(DoublePointer p, long count) {
    double[] out = new double[Math.toIntExact(count)];
    p.get(out);
    return out;
  }

  /** The first {@code take} columns of the [rows, cols] matrix p. */
  private static double[] columns(DoublePointer p, int rows, int cols, int take) {
    double[] all = toArray(p, (long) rows * cols);
    if (take == cols) {
      return all;
    }
    double[] out = new double[rows * take];
    for (int i = 0; i < rows; i++) {
      System.arraycopy(all, i * cols, out, i * take, take);
    }
    return out;
  }
}
