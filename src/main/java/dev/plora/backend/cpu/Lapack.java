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
 * Double-precision numerics on row-major matrices in native memory, for {@code dev.plora.linalg}:
 * LAPACK through libplora_cpu ({@code native/include/plora/lapack.h}) and OpenBLAS's dgemm. Both
 * reach the one OpenBLAS that this backend loads, whose library carries LAPACK although its Java
 * binding does not (the preset's binding with LAPACK loads a second copy of the library beside
 * it). Callers validate shapes; these check what LAPACK returns.
 */
public final class Lapack {
  static {
    CpuBackend.librariesLoadedFrom(); // loads libplora_env, libplora_cpu and OpenBLAS, in that order
  }

  private Lapack() {}

  /**
   * Thin SVD of {@code a} [rows, cols] (destroyed): {@code s} gets the min(rows, cols) singular
   * values, descending; {@code u} [rows, k] and {@code vt} [k, cols] the factors, or both null
   * for the values alone.
   */
  public static void gesdd(int rows, int cols, DoublePointer a, DoublePointer s, DoublePointer u, DoublePointer vt) {
    int k = Math.min(rows, cols);
    int[] info = {0};
    check(Cpu.plora_cpu_dgesdd(rows, cols, a, cols, s, u, k, vt, cols, info), info);
  }

  /** {@code a} [rows, cols], rows ≥ cols, becomes the Q of its thin QR factorization. */
  public static void orthonormalize(int rows, int cols, DoublePointer a) {
    int[] info = {0};
    check(Cpu.plora_cpu_dorthonormalize(rows, cols, a, cols, info), info);
  }

  /** c ← alpha·op(a)·op(b) + beta·c with c [m, n], k the inner dimension; dense rows. */
  public static void gemm(boolean transA, DoublePointer a, boolean transB, DoublePointer b, double alpha, double beta,
      DoublePointer c, int m, int n, int k) {
    openblas_nolapack.cblas_dgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
        transB ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, transA ? m : k, b, transB ? k : n, beta, c, n);
  }

  /** The Frobenius norm of the first {@code count} elements. */
  public static double norm(DoublePointer x, long count) {
    return openblas_nolapack.cblas_dnrm2(Math.toIntExact(count), x, 1);
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
