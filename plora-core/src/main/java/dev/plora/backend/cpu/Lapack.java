package dev.plora.backend.cpu;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;

import dev.plora.backend.BackendException;
import dev.plora.backend.CpuLibrary;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;
import org.bytedeco.openblas.global.openblas_nolapack;

/**
 * Double-precision numerics on {@link HostMatrix}es, for {@code dev.plora.linalg}: LAPACK through
 * libplora_cpu ({@code native/include/plora/lapack.h}) and OpenBLAS's dgemm. Both reach the one
 * OpenBLAS that this backend loads, whose library carries LAPACK although its Java binding does
 * not (the preset's binding with LAPACK loads a second copy of the library beside it). Shapes are
 * checked before the native call; LAPACK's info after it.
 */
public final class Lapack {
  static {
    CpuBackend.librariesLoadedFrom(); // loads libplora_env, libplora_cpu and OpenBLAS, in that order
  }

  private Lapack() {}

  /** The min(rows, cols) singular values of {@code a}, descending; {@code a} is destroyed. */
  public static double[] singularValues(HostMatrix a) {
    return gesdd(a, null, null);
  }

  /**
   * Thin SVD a = u·diag(s)·vt, returning s (k = min(rows, cols) values, descending) and filling
   * u [rows, k] and vt [k, cols]; {@code a} is destroyed.
   */
  public static double[] svd(HostMatrix a, HostMatrix u, HostMatrix vt) {
    int k = Math.min(a.rows(), a.cols());
    checkShape("u", u, a.rows(), k);
    checkShape("vt", vt, k, a.cols());
    return gesdd(a, u, vt);
  }

  private static double[] gesdd(HostMatrix a, HostMatrix u, HostMatrix vt) {
    int k = Math.min(a.rows(), a.cols());
    int[] info = {0};
    try (DoublePointer s = new DoublePointer(k)) {
      check(Cpu.plora_cpu_dgesdd(a.rows(), a.cols(), a.pointer(), a.cols(), s, u == null ? null : u.pointer(), k,
          vt == null ? null : vt.pointer(), a.cols(), info), info);
      double[] out = new double[k];
      s.get(out);
      return out;
    }
  }

  /** {@code a} [rows, cols], rows ≥ cols, becomes the Q of its thin QR factorization. */
  public static void orthonormalize(HostMatrix a) {
    if (a.rows() < a.cols()) {
      throw new IllegalArgumentException("a: expected rows ≥ cols, got " + a.rows() + " x " + a.cols());
    }
    int[] info = {0};
    check(Cpu.plora_cpu_dorthonormalize(a.rows(), a.cols(), a.pointer(), a.cols(), info), info);
  }

  /** c ← alpha·op(a)·op(b) + beta·c. */
  public static void gemm(boolean transA, HostMatrix a, boolean transB, HostMatrix b, double alpha, double beta,
      HostMatrix c) {
    int m = transA ? a.cols() : a.rows(), k = transA ? a.rows() : a.cols();
    int n = transB ? b.rows() : b.cols(), kb = transB ? b.cols() : b.rows();
    if (k != kb) {
      throw new IllegalArgumentException("b: expected op(b) with " + k + " rows to match op(a) [" + m + ", " + k
          + "], got " + kb);
    }
    checkShape("c", c, m, n);
    openblas_nolapack.cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
        transB ? CblasTrans : CblasNoTrans, m, n, k, alpha, a.pointer(), a.cols(), b.pointer(), b.cols(), beta,
        c.pointer(), c.cols());
  }

  /** The Frobenius norm. */
  public static double norm(HostMatrix x) {
    return openblas_nolapack.cblas_dnrm2(x.rows() * x.cols(), x.pointer(), 1);
  }

  private static void checkShape(String name, HostMatrix x, int rows, int cols) {
    if (x.rows() != rows || x.cols() != cols) {
      throw new IllegalArgumentException(name + ": expected [" + rows + ", " + cols + "], got [" + x.rows() + ", "
          + x.cols() + "]");
    }
  }

  private static void check(int status, int[] info) {
    if (info[0] != 0) {
      throw new LapackException(CpuKernels.lastError(), info[0]);
    }
    if (status != 0) {
      throw new BackendException("lapack: " + CpuKernels.lastError());
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/lapack.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_dgesdd(@Cast("int64_t") long rows, @Cast("int64_t") long cols, DoublePointer a,
        @Cast("int64_t") long lda, DoublePointer s, DoublePointer u, @Cast("int64_t") long ldu, DoublePointer vt,
        @Cast("int64_t") long ldvt, int[] info);

    static native int plora_cpu_dorthonormalize(@Cast("int64_t") long rows, @Cast("int64_t") long cols,
        DoublePointer a, @Cast("int64_t") long lda, int[] info);
  }
}
