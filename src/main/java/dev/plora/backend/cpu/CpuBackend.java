package dev.plora.backend.cpu;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.cblas_sgemm;

import dev.plora.backend.AdamwHyper;
import dev.plora.backend.AdamwSlot;
import dev.plora.backend.Backend;
import dev.plora.backend.BackendException;
import dev.plora.backend.Dropout;
import dev.plora.backend.NativePointers;
import dev.plora.backend.Rounding;
import dev.plora.tensor.DType;
import dev.plora.tensor.Device;
import dev.plora.tensor.Tensor;
import java.nio.ByteBuffer;
import java.util.List;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.openblas.global.openblas_nolapack;

/**
 * Host backend: 64-byte aligned off-heap memory, GEMMs through OpenBLAS, our C++ kernels
 * (libplora_cpu). Work runs synchronously on the calling thread (OpenMP inside kernels).
 */
public final class CpuBackend extends Backend {
  // Our kernels first: their preloaded libplora_env sets the thread-waiting defaults that
  // OpenBLAS reads when it loads (native/cpu/env.cpp).
  private static final String KERNELS_LOADED_FROM = CpuKernels.LOADED_FROM;
  private static final String BLAS_LOADED_FROM = Loader.load(openblas_nolapack.class);

  /** Opens the host backend; fails with a clear message on a CPU the kernels were not built for. */
  public CpuBackend() {
    if (CpuKernels.plora_cpu_supported() != 0) {
      throw new BackendException("cpu: " + CpuKernels.lastError());
    }
  }

  @Override
  public String name() {
    return "cpu";
  }

  @Override
  public Device device() {
    return Device.CPU;
  }

  @Override
  public String describe() {
    return "cpu: " + Runtime.getRuntime().availableProcessors() + " cores, kernel threads "
        + CpuKernels.plora_cpu_num_threads() + ", BLAS threads " + blasThreads();
  }

  /** Threads OpenBLAS uses for a GEMM. */
  public static int blasThreads() {
    return CpuKernels.plora_cpu_blas_threads();
  }

  /** Threads our OpenMP kernels use. */
  public static int kernelThreads() {
    return CpuKernels.plora_cpu_num_threads();
  }

  /** Where the JNI glue of our kernels and OpenBLAS were loaded from. */
  public static String librariesLoadedFrom() {
    return KERNELS_LOADED_FROM + ", " + BLAS_LOADED_FROM;
  }

  @Override
  public void synchronize() {}

  @Override
  protected long allocateBytes(long bytes) {
    long address = CpuKernels.plora_cpu_alloc(bytes);
    if (address == 0) {
      throw new BackendException("cpu: cannot allocate " + bytes + " bytes: " + CpuKernels.lastError());
    }
    return address;
  }

  @Override
  protected void freeBytes(long address, long bytes) {
    CpuKernels.plora_cpu_free(address);
  }

  @Override
  protected void upload(ByteBuffer host, Tensor dst) {
    int code = dst.dtype().code();
    long hostAddress = new Pointer(host).address();
    check(CpuKernels.plora_cpu_copy(hostAddress, code, dst.cols(), dst.address(), code, dst.ld(), dst.rows(),
        dst.cols()), "upload");
  }

  @Override
  protected void download(Tensor src, ByteBuffer host) {
    int code = src.dtype().code();
    long hostAddress = new Pointer(host).address();
    check(CpuKernels.plora_cpu_copy(src.address(), code, src.ld(), hostAddress, code, src.cols(), src.rows(),
        src.cols()), "download");
  }

  @Override
  protected void copyImpl(Tensor src, Tensor dst) {
    check(CpuKernels.plora_cpu_copy(src.address(), src.dtype().code(), src.ld(), dst.address(), dst.dtype().code(),
        dst.ld(), src.rows(), src.cols()), "copy");
  }

  @Override
  protected void fillImpl(Tensor dst, float value) {
    check(CpuKernels.plora_cpu_fill(dst.address(), dst.dtype().code(), dst.ld(), dst.rows(), dst.cols(), value),
        "fill");
  }

  @Override
  protected void gemmImpl(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c,
      int m, int n, int k) {
    if (a.dtype() == DType.F32 && c.dtype() == DType.F32) {
      sgemm(transA, a, transB, b, alpha, beta, c, m, n, k);
      return;
    }
    // 16-bit storage: widen the operands to fp32, run sgemm, round the result once.
    try (Tensor a32 = widened(a); Tensor b32 = widened(b); Tensor c32 = c.dtype() == DType.F32 ? null : widened(c)) {
      Tensor out = c32 != null ? c32 : c;
      sgemm(transA, a32, transB, b32, alpha, beta, out, m, n, k);
      if (c32 != null) {
        copyImpl(c32, c);
      }
    }
  }

  private Tensor widened(Tensor t) {
    Tensor wide = allocate(t.rows(), t.cols(), DType.F32);
    copyImpl(t, wide);
    return wide;
  }

  private static void sgemm(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c,
      int m, int n, int k) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, k,
        alpha, NativePointers.floatsAt(a.address()), a.ld(), NativePointers.floatsAt(b.address()), b.ld(), beta,
        NativePointers.floatsAt(c.address()), c.ld());
  }

  @Override
  protected void shrinkImpl(Tensor x, Tensor a, float scaling, Dropout dropout, Tensor out) {
    check(CpuKernels.plora_cpu_shrink(x.address(), x.ld(), a.address(), a.ld(), out.address(), out.ld(),
        x.dtype().code(), x.rows(), x.cols(), a.rows(), scaling, dropout.p(), dropout.seed(), dropout.stream()),
        "shrink");
  }

  @Override
  protected void dropoutMaskImpl(Dropout dropout, Tensor out) {
    check(CpuKernels.plora_cpu_dropout_mask(out.address(), out.dtype().code(), out.ld(), out.rows(), out.cols(),
        dropout.p(), dropout.seed(), dropout.stream()), "dropout mask");
  }

  @Override
  protected void dyPassImpl(Tensor dy, Tensor b, Tensor ss, float scaling, Tensor ds, Tensor db) {
    check(CpuKernels.plora_cpu_dy_pass(dy.address(), dy.ld(), b.address(), b.ld(), ss.address(), ss.ld(),
        ds.address(), ds.ld(), db.address(), db.ld(), dy.dtype().code(), dy.rows(), dy.cols(), b.cols(), scaling),
        "dY pass");
  }

  @Override
  protected void daDxImpl(Tensor x, Tensor ds, Tensor a, Dropout dropout, Tensor da, Tensor dx) {
    check(CpuKernels.plora_cpu_da_dx(x.address(), x.ld(), ds.address(), ds.ld(), a.address(), a.ld(), da.address(),
        da.ld(), dx != null ? dx.address() : 0L, dx != null ? dx.ld() : 0L, x.dtype().code(), x.rows(), x.cols(),
        a.rows(), dropout.p(), dropout.seed(), dropout.stream()), "dA/dX update");
  }

  @Override
  protected void axpbyImpl(float alpha, Tensor x, float beta, Tensor y) {
    check(CpuKernels.plora_cpu_axpby(alpha, x.address(), x.dtype().code(), x.ld(), beta, y.address(),
        y.dtype().code(), y.ld(), x.rows(), x.cols()), "axpby");
  }

  @Override
  protected void addBiasImpl(Tensor y, Tensor bias) {
    check(CpuKernels.plora_cpu_add_bias(y.address(), y.dtype().code(), y.ld(), y.rows(), y.cols(), bias.address(),
        bias.dtype().code()), "bias add");
  }

  @Override
  protected void randomFillImpl(Tensor out, boolean normal, float a, float b, long seed, long stream) {
    check(CpuKernels.plora_cpu_random_fill(out.address(), out.dtype().code(), out.ld(), out.rows(), out.cols(),
        normal ? 1 : 0, a, b, seed, stream), "random fill");
  }

  @Override
  protected long countNonFiniteImpl(Tensor x) {
    long[] count = {0};
    check(CpuKernels.plora_cpu_count_nonfinite(x.address(), x.dtype().code(), x.ld(), x.rows(), x.cols(), count),
        "non-finite count");
    return count[0];
  }

  @Override
  protected void mergeImpl(Tensor w, Tensor b, Tensor a, float c, Rounding rounding, long seed, long stream,
      float scaleA, float scaleB) {
    check(CpuKernels.plora_cpu_merge(w.address(), w.dtype().code(), w.ld(), b.address(), b.ld(), a.address(), a.ld(),
        a.dtype().code(), w.rows(), w.cols(), a.rows(), c, rounding.ordinal(), seed, stream, scaleA, scaleB),
        "merge");
  }

  @Override
  protected void adamwImpl(List<AdamwSlot> slots, DType copyType, AdamwHyper h) {
    AdamwTable t = new AdamwTable(slots);
    check(CpuKernels.plora_cpu_adamw(slots.size(), t.params, t.grads, t.m, t.v, t.copies, t.copyLd, t.rows, t.cols,
        t.lrScale, copyType.code(), h.lr(), h.beta1(), h.beta2(), h.eps(), h.weightDecay(), h.gradScale(),
        h.biasCorrection1(), h.biasCorrection2()), "adamw");
  }

  @Override
  protected double sumSquaresImpl(List<Tensor> xs) {
    MatrixTable t = new MatrixTable(xs);
    double[] out = {0};
    check(CpuKernels.plora_cpu_sum_squares_many(xs.size(), t.address, t.dtype, t.ld, t.rows, t.cols, out),
        "sum of squares");
    return out[0];
  }

  @Override
  protected void geluImpl(Tensor x, Tensor y) {
    check(CpuKernels.plora_cpu_gelu(x.address(), x.ld(), y.address(), y.ld(), x.dtype().code(), x.rows(), x.cols()),
        "gelu");
  }

  @Override
  protected void geluBackwardImpl(Tensor x, Tensor dy, Tensor dx) {
    check(CpuKernels.plora_cpu_gelu_backward(x.address(), x.ld(), dy.address(), dy.ld(), dx.address(), dx.ld(),
        x.dtype().code(), x.rows(), x.cols()), "gelu backward");
  }

  @Override
  protected double mseImpl(Tensor pred, Tensor target, Tensor dpred) {
    double[] loss = {0};
    check(CpuKernels.plora_cpu_mse(pred.address(), pred.ld(), target.address(), target.ld(), pred.dtype().code(),
        pred.rows(), pred.cols(), loss, dpred == null ? 0 : dpred.address(), dpred == null ? 0 : dpred.ld()), "mse");
    return loss[0];
  }

  @Override
  protected double softmaxCrossEntropyImpl(Tensor logits, Tensor labels, Tensor dlogits) {
    double[] loss = {0};
    long[] bad = {0};
    int status = CpuKernels.plora_cpu_softmax_xent(logits.address(), logits.ld(), logits.dtype().code(),
        logits.rows(), logits.cols(), labels.address(), loss, dlogits == null ? 0 : dlogits.address(),
        dlogits == null ? 0 : dlogits.ld(), bad);
    if (bad[0] > 0) {
      throw new IllegalArgumentException("softmaxCrossEntropy: labels: " + bad[0] + " of " + labels.rows()
          + " are not class indices in [0, " + logits.cols() + ")");
    }
    check(status, "softmax cross-entropy");
    return loss[0];
  }

  @Override
  protected void release() {}

  private void check(int status, String operation) {
    check(status, operation, status == 0 ? "" : CpuKernels.lastError());
  }
}
