package dev.plora.linalg;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.backend.Backend;
import dev.plora.backend.cpu.CpuBackend;
import dev.plora.backend.cpu.HostMatrix;
import dev.plora.backend.cpu.Lapack;
import dev.plora.backend.cpu.LapackException;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Decompositions checked against matrices built as U·diag(σ)·Vᵀ from random orthonormal factors. */
class SvdTest {
  /** A matrix with a known thin SVD: its factors and spectrum, and the product in double. */
  private record Known(int rows, int cols, double[] u, double[] sigma, double[] v, double[] m) {}

  /** rank = sigma.length ≤ min(rows, cols); U [rows, rank] and V [cols, rank] orthonormal. */
  private static Known known(int rows, int cols, double[] sigma, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    int r = sigma.length;
    double[] u = orthonormal(rows, r, rng), v = orthonormal(cols, r, rng);
    double[] m = new double[rows * cols];
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        double x = 0;
        for (int t = 0; t < r; t++) {
          x += u[i * r + t] * sigma[t] * v[j * r + t];
        }
        m[i * cols + j] = x;
      }
    }
    return new Known(rows, cols, u, sigma, v, m);
  }

  /** Gaussian columns orthonormalized by modified Gram-Schmidt, twice. */
  private static double[] orthonormal(int rows, int cols, SplittableRandom rng) {
    double[] q = new double[rows * cols];
    for (int i = 0; i < q.length; i++) {
      q[i] = rng.nextGaussian();
    }
    for (int pass = 0; pass < 2; pass++) {
      for (int j = 0; j < cols; j++) {
        for (int p = 0; p < j; p++) {
          double d = 0;
          for (int i = 0; i < rows; i++) {
            d += q[i * cols + p] * q[i * cols + j];
          }
          for (int i = 0; i < rows; i++) {
            q[i * cols + j] -= d * q[i * cols + p];
          }
        }
        double norm = 0;
        for (int i = 0; i < rows; i++) {
          norm += q[i * cols + j] * q[i * cols + j];
        }
        for (int i = 0; i < rows; i++) {
          q[i * cols + j] /= Math.sqrt(norm);
        }
      }
    }
    return q;
  }

  private static double[] spectrum(int n, double decay) {
    double[] s = new double[n];
    for (int i = 0; i < n; i++) {
      s[i] = 3 * Math.pow(decay, i);
    }
    return s;
  }

  /** ‖M − U·diag(s)·Vᵀ‖_F / ‖M‖_F. */
  private static double reconstructionError(double[] m, Svd svd) {
    double num = 0, den = 0;
    for (int i = 0; i < svd.rows(); i++) {
      for (int j = 0; j < svd.cols(); j++) {
        double x = 0;
        for (int t = 0; t < svd.rank(); t++) {
          x += svd.u()[i * svd.rank() + t] * svd.s()[t] * svd.vt()[t * svd.cols() + j];
        }
        double d = m[i * svd.cols() + j] - x;
        num += d * d;
        den += m[i * svd.cols() + j] * m[i * svd.cols() + j];
      }
    }
    return Math.sqrt(num / den);
  }

  /** max |XᵀX − I| over the k columns of x [n, k] (transposed: over the rows of x [k, n]). */
  private static double orthonormalityError(double[] x, int n, int k, boolean rowsOfX) {
    double worst = 0;
    for (int p = 0; p < k; p++) {
      for (int q = 0; q <= p; q++) {
        double d = 0;
        for (int i = 0; i < n; i++) {
          d += rowsOfX ? x[p * n + i] * x[q * n + i] : x[i * k + p] * x[i * k + q];
        }
        worst = Math.max(worst, Math.abs(d - (p == q ? 1 : 0)));
      }
    }
    return worst;
  }

  private static void assertSpectrum(double[] expected, double[] actual, int count) {
    for (int i = 0; i < count; i++) {
      assertEquals(expected[i], actual[i], 1e-12 * expected[0], "singular value " + i);
    }
  }

  /** Tall, wide, square, a row, a column: full-rank matrices with a spread-out spectrum. */
  @ParameterizedTest
  @CsvSource({"57, 13", "13, 57", "33, 33", "1, 17", "17, 1", "1, 1", "130, 129"})
  void thinSvdOfAKnownSpectrum(int rows, int cols) {
    int k = Math.min(rows, cols);
    // from 3 down to 0.003: gaps wide enough for each singular vector to be well determined
    Known a = known(rows, cols, spectrum(k, Math.pow(1e-3, 1.0 / Math.max(1, k - 1))), rows * 1000L + cols);
    assertSpectrum(a.sigma(), Svd.singularValues(a.m(), rows, cols), k);
    Svd svd = Svd.thin(a.m(), rows, cols);
    assertEquals(k, svd.rank());
    assertSpectrum(a.sigma(), svd.s(), k);
    assertTrue(reconstructionError(a.m(), svd) < 1e-13, "reconstruction");
    assertTrue(orthonormalityError(svd.u(), rows, k, false) < 1e-13, "U orthonormal");
    assertTrue(orthonormalityError(svd.vt(), cols, k, true) < 1e-13, "V orthonormal");
    for (int t = 0; t < k; t++) { // the singular vectors themselves, up to sign (the spectrum is simple)
      double dot = 0;
      for (int i = 0; i < rows; i++) {
        dot += svd.u()[i * k + t] * a.u()[i * k + t];
      }
      assertEquals(1, Math.abs(dot), 1e-10, "left vector " + t);
    }
  }

  /** Rank 3 in a 40 x 30 matrix: three singular values, the rest at rounding level. */
  @Test
  void rankDeficientMatrix() {
    double[] sigma = {5, 2, 0.5};
    Known a = known(40, 30, sigma, 3);
    double[] sv = Svd.singularValues(a.m(), 40, 30);
    assertSpectrum(sigma, sv, 3);
    for (int i = 3; i < 30; i++) {
      assertTrue(sv[i] < 1e-14 * sigma[0], "singular value " + i + " = " + sv[i]);
    }
    Svd thin = Svd.thin(a.m(), 40, 30); // the null space still gets orthonormal vectors
    assertTrue(orthonormalityError(thin.u(), 40, 30, false) < 1e-13, "U orthonormal");
    assertTrue(orthonormalityError(thin.vt(), 30, 30, true) < 1e-13, "V orthonormal");
    Svd three = Svd.truncated(a.m(), 40, 30, 3, 1);
    assertTrue(reconstructionError(a.m(), three) < 1e-13, "rank 3 is exact");
  }

  /**
   * Shapes far larger than the rank take the randomized path: an exactly low-rank matrix is
   * recovered to rounding, and a decaying spectrum to within a hair of Eckart–Young's optimum.
   */
  @ParameterizedTest
  @CsvSource({"300, 200, 5", "180, 400, 8", "257, 131, 1"})
  void randomizedTruncatedSvd(int rows, int cols, int rank) {
    int min = Math.min(rows, cols);
    Known exact = known(rows, cols, spectrum(rank, 0.5), 7);
    Svd svd = Svd.truncated(exact.m(), rows, cols, rank, 11);
    assertSpectrum(exact.sigma(), svd.s(), rank);
    assertTrue(reconstructionError(exact.m(), svd) < 1e-12, "exactly rank " + rank);

    double[] sigma = spectrum(min, 0.85);
    Known decaying = known(rows, cols, sigma, 8);
    svd = Svd.truncated(decaying.m(), rows, cols, rank, 12);
    assertEquals(rank, svd.rank());
    assertTrue(orthonormalityError(svd.u(), rows, rank, false) < 1e-12, "U orthonormal");
    assertTrue(orthonormalityError(svd.vt(), cols, rank, true) < 1e-12, "V orthonormal");
    double tail = 0, all = 0;
    for (int i = 0; i < min; i++) {
      all += sigma[i] * sigma[i];
      tail += i >= rank ? sigma[i] * sigma[i] : 0;
    }
    double best = Math.sqrt(tail / all);
    double error = reconstructionError(decaying.m(), svd);
    assertTrue(error >= best * (1 - 1e-12) && error <= best * 1.001, "error " + error + ", optimum " + best);
    for (int i = 0; i < rank; i++) {
      assertEquals(sigma[i], svd.s()[i], 1e-6 * sigma[i], "singular value " + i);
    }
  }

  /** Rank 4 takes the randomized path, rank 30 the exact one. */
  @ParameterizedTest
  @CsvSource({"4", "30"})
  void lowRankFactorsAndTheirReportedError(int rank) {
    int rows = 90, cols = 70;
    double[] sigma = spectrum(Math.min(rows, cols), 0.6);
    Known a = known(rows, cols, sigma, 5);
    LowRank.Factors f = LowRank.truncatedSvd(a.m(), rows, cols, rank, 2);
    double num = 0, den = 0, tail = 0, all = 0;
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        double x = 0;
        for (int t = 0; t < rank; t++) {
          x += f.b()[i * rank + t] * f.a()[t * cols + j];
        }
        num += (a.m()[i * cols + j] - x) * (a.m()[i * cols + j] - x);
        den += a.m()[i * cols + j] * a.m()[i * cols + j];
      }
    }
    for (int i = 0; i < sigma.length; i++) {
      all += sigma[i] * sigma[i];
      tail += i >= rank ? sigma[i] * sigma[i] : 0;
    }
    assertEquals(Math.sqrt(num / den), f.relativeError(), 1e-12, "reported error is B·A's");
    double best = Math.sqrt(tail / all);
    assertEquals(best, f.relativeError(), 1e-6 * best, "and Eckart–Young's optimum");
    assertSpectrum(sigma, f.singularValues(), rank);
    assertEquals(0, LowRank.truncatedSvd(new double[6], 2, 3, 1, 0).relativeError(), "a zero matrix");
  }

  @Test
  void refusesBadInputNamingTheArgument() {
    double[] m = new double[6];
    assertMessage("m: expected a 2 x 3 matrix, got null", () -> Svd.thin(null, 2, 3));
    assertMessage("rows, cols: expected both ≥ 1, got 0 x 3", () -> Svd.singularValues(m, 0, 3));
    assertMessage("m: expected 8 values for 2 x 4, got 6", () -> Svd.thin(m, 2, 4));
    assertMessage("m: expected 4294967296 values for 65536 x 65536, got 6", () -> Svd.thin(m, 65536, 65536));
    double[] nan = m.clone();
    nan[4] = Double.NaN;
    assertMessage("m: expected finite values, got NaN at [1, 1]", () -> Svd.singularValues(nan, 2, 3));
    double[] inf = m.clone();
    inf[0] = Double.NEGATIVE_INFINITY;
    assertMessage("m: expected finite values, got -Infinity at [0, 0]", () -> Svd.truncated(inf, 2, 3, 1, 0));
    assertMessage("rank: expected 1..2 for a 2 x 3 matrix, got 0", () -> Svd.truncated(m, 2, 3, 0, 0));
    assertMessage("rank: expected 1..2 for a 2 x 3 matrix, got 3", () -> LowRank.truncatedSvd(m, 2, 3, 3, 0));
  }

  @Test
  void hostMatricesAndLapackCallsRefuseBadShapes() {
    try (HostMatrix a = HostMatrix.allocate(3, 2); HostMatrix b = HostMatrix.allocate(3, 2);
        HostMatrix c = HostMatrix.allocate(2, 2)) {
      assertMessage("b: expected op(b) with 2 rows to match op(a) [3, 2], got 3",
          () -> Lapack.gemm(false, a, false, b, 1, 0, c));
      assertMessage("c: expected [3, 3], got [2, 2]", () -> Lapack.gemm(false, a, true, b, 1, 0, c));
      assertMessage("a: expected rows ≥ cols, got 2 x 3", () -> {
        try (HostMatrix t = HostMatrix.of(new double[] {1, 2, 3, 4, 5, 6}, 2, 3)) {
          Lapack.orthonormalize(t);
        }
      });
      assertMessage("u: expected [3, 2], got [2, 2]", () -> Lapack.svd(a, c, c));
      assertMessage("values: expected 6 for 2 x 3, got 5", () -> HostMatrix.of(new double[5], 2, 3));
      assertMessage("rows, cols: expected both ≥ 1 with rows·cols < 2^31, got 0 x 3",
          () -> HostMatrix.allocate(0, 3));
      assertMessage("count: expected 0..2, got 3", () -> a.leadingColumns(3));
    }
    HostMatrix closed = HostMatrix.allocate(2, 2);
    closed.close();
    closed.close(); // idempotent
    assertEquals("matrix [2, 2]: closed", assertThrows(IllegalStateException.class, () -> Lapack.norm(closed))
        .getMessage());
  }

  private static void assertMessage(String expected, org.junit.jupiter.api.function.Executable call) {
    assertEquals(expected, assertThrows(IllegalArgumentException.class, call).getMessage());
  }

  /**
   * What LAPACK itself refuses comes back as its info, named by routine: here its NaN check of
   * dgesdd's matrix, argument 5 (the public entry points refuse NaN before LAPACK sees it).
   */
  @Test
  void lapackInfoBecomesAnException() {
    try (HostMatrix a = HostMatrix.of(new double[] {1, Double.NaN, 3, 4}, 2, 2)) {
      LapackException e = assertThrows(LapackException.class, () -> Lapack.singularValues(a));
      assertEquals(-5, e.info());
      assertTrue(e.getMessage().contains("LAPACKE_dgesdd returned info -5"), e.getMessage());
    }
  }

  /** LAPACK and the backend's GEMMs share one OpenBLAS: one library file of it mapped, not two. */
  @Test
  void oneOpenBlasInTheProcess() throws Exception {
    Svd.singularValues(new double[] {1, 2, 3, 4}, 2, 2);
    try (Backend backend = new CpuBackend(); Tensor a = backend.fromArray(new float[] {1, 2, 3, 4}, 2, 2, DType.F32);
        Tensor c = backend.allocate(2, 2, DType.F32)) {
      backend.gemm(false, a, false, a, 1, 0, c);
      assertEquals(Arrays.toString(new float[] {7, 10, 15, 22}), Arrays.toString(c.toFloatArray()));
    }
    TreeSet<String> blas = new TreeSet<>();
    for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
      String name = Path.of(line.substring(line.lastIndexOf(' ') + 1)).getFileName() + "";
      if (name.matches("libopenblas.*\\.so.*")) {
        blas.add(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    assertEquals(1, blas.size(), "OpenBLAS libraries mapped: " + blas);
  }
}
