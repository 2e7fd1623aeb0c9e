package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;

/**
 * GEMM through the device's vendor BLAS (OpenBLAS on the host, cuBLAS on CUDA). Not a kernel of
 * our libraries: each backend owns its BLAS handle, so the call goes to {@link Backend#gemmImpl}
 * once validated here.
 */
public final class Gemm {
  private Gemm() {}

  /**
   * {@code c ← alpha·op(a)·op(b) + beta·c} with fp32 accumulation, where op transposes when
   * asked. {@code a} and {@code b} share a float dtype; {@code c} has that dtype or F32. With
   * beta = 0 c is not read (it may hold NaN).
   */
  public static void gemm(Backend backend, boolean transA, Tensor a, boolean transB, Tensor b, float alpha,
      float beta, Tensor c) {
    synchronized (backend) {
      Args.floats(backend, "gemm", "a", a);
      Args.tensor(backend, "b", b);
      Args.tensor(backend, "c", c);
      int m = transA ? a.cols() : a.rows();
      int k = transA ? a.rows() : a.cols();
      int kb = transB ? b.cols() : b.rows();
      int n = transB ? b.rows() : b.cols();
      if (k != kb) {
        throw new IllegalArgumentException("gemm: inner dimensions differ: op(a) is [" + m + "," + k + "] (a "
            + a.shape() + (transA ? " transposed" : "") + ") but op(b) is [" + kb + "," + n + "] (b " + b.shape()
            + (transB ? " transposed" : "") + ")");
      }
      Args.shape("gemm", "c", c, m, n, "op(a)·op(b) [" + m + "," + n + "]");
      if (b.dtype() != a.dtype()) {
        throw new IllegalArgumentException("gemm: b has dtype " + b.dtype() + " but a has " + a.dtype());
      }
      if (c.dtype() != a.dtype() && c.dtype() != DType.F32) {
        throw new IllegalArgumentException("gemm: c has dtype " + c.dtype() + ", expected " + a.dtype() + " or F32");
      }
      Args.disjoint("gemm", "c", c, "a", a);
      Args.disjoint("gemm", "c", c, "b", b);
      Args.finite("alpha", alpha);
      Args.finite("beta", beta);
      backend.gemmImpl(transA, a, transB, b, alpha, beta, c, m, n, k);
    }
  }
}
