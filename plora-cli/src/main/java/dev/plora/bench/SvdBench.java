package dev.plora.bench;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.HostMatrix;
import dev.plora.backend.cpu.Lapack;
import dev.plora.linalg.Svd;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The truncated SVD behind rank-R adapter exports ({@link Svd#truncated}, on the host through
 * LAPACK), timed in rounds interleaved with a double GEMM of the matrix's own size (n x n times
 * n x n): the machine's drifts then move both, and their ratio is the figure to compare.
 */
public final class SvdBench {
  public static final String FAMILY = "svd";
  private static final int N = 4096;
  private static final int RANK = 64;

  private final Backend backend;
  private final Timing timing;

  public SvdBench(Backend backend, Timing timing) {
    this.backend = backend;
    this.timing = timing;
  }

  /** Results "dgemm" (n³ GEMM in double) and "svd_truncated_r64", in that order. */
  public List<BenchResult> run() {
    double[] m = matrix();
    try (HostMatrix a = HostMatrix.of(m, N, N); HostMatrix b = HostMatrix.of(m, N, N);
        HostMatrix c = HostMatrix.allocate(N, N)) {
      double[][] ms = timing.measureInterleaved(backend, List.of(
          () -> Lapack.gemm(false, a, false, b, 1, 0, c),
          () -> Svd.truncated(m, N, N, RANK, 1)));
      String shape = "n=" + N + " F64";
      return List.of(BenchResult.of("dgemm", shape, ms[0], 0, 2L * N * N * N),
          BenchResult.of("svd_truncated_r" + RANK, shape, ms[1]));
    }
  }

  /** Rank 128 plus Gaussian noise: a spectrum that falls, then a floor, like a trained update's. */
  private static double[] matrix() {
    SplittableRandom rng = new SplittableRandom(1);
    int r = 128;
    double[] left = new double[N * r], right = new double[r * N];
    for (int i = 0; i < left.length; i++) {
      left[i] = rng.nextGaussian();
      right[i] = rng.nextGaussian();
    }
    double[] m;
    try (HostMatrix l = HostMatrix.of(left, N, r); HostMatrix rt = HostMatrix.of(right, r, N);
        HostMatrix p = HostMatrix.allocate(N, N)) {
      Lapack.gemm(false, l, false, rt, 1, 0, p);
      m = p.toArray();
    }
    for (int i = 0; i < m.length; i++) {
      m[i] += 0.5 * rng.nextGaussian();
    }
    return m;
  }
}
