package dev.plora.backend.cpu;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.cblas_sgemm;

import dev.plora.backend.Backend;
import dev.plora.backend.BackendException;
import dev.plora.backend.NativePointers;
import dev.plora.tensor.DType;
import dev.plora.tensor.Device;
import dev.plora.tensor.Tensor;
import java.nio.ByteBuffer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.openblas.global.openblas_nolapack;

/**
 * Host backend: 64-byte aligned off-heap memory, GEMMs through OpenBLAS (F32, and 16-bit
 * operands widened to fp32) or oneDNN (BF16 where the CPU has bf16 arithmetic, see
 * {@link Bf16Gemm}), our C++ kernels (libplora_cpu, called by the kernel families of
 * {@code dev.plora.backend}). Work runs synchronously on the calling thread (OpenMP inside
 * kernels and oneDNN).
 */
public final class CpuBackend extends Backend {
  // Our kernels first: their preloaded libplora_env sets the thread-waiting defaults that
  // OpenBLAS reads when it loads (native/cpu/env.cpp).
  private static final String KERNELS_LOADED_FROM = CpuKernels.LOADED_FROM;
  private static final String BLAS_LOADED_FROM = Loader.load(openblas_nolapack.class);

  private final Bf16Gemm bf16Gemm; // ONEDNN or OPENBLAS, never AUTO
  private final OneDnnGemm oneDnn; // null on the OPENBLAS route
  private final String bf16GemmReason;
  private static final int PACKING_COLS = 4096;
  private Tensor packing; // bytes for operands oneDNN needs contiguous; null until one does

  /**
   * Opens the host backend with the BF16 GEMM route the settings ask for ({@link
   * Bf16Gemm#fromSettings}); fails with a clear message on a CPU the kernels were not built for.
   */
  public CpuBackend() {
    this(Bf16Gemm.fromSettings());
  }

  /**
   * Opens the host backend with the given BF16 GEMM route; {@link Bf16Gemm#ONEDNN} is refused
   * (IllegalArgumentException) with oneDNN's reason where it is unusable, {@link Bf16Gemm#AUTO}
   * then falls back to OpenBLAS.
   */
  public CpuBackend(Bf16Gemm route) {
    if (route == null) {
      throw new IllegalArgumentException("cpu: BF16 GEMM route is null; expected AUTO, ONEDNN or OPENBLAS");
    }
    if (CpuKernels.plora_cpu_supported() != 0) {
      throw new BackendException("cpu: " + CpuKernels.lastError());
    }
    verifyAbi("libplora_cpu");
    OneDnnGemm.Probe probe = route == Bf16Gemm.OPENBLAS ? null : OneDnnProbe.RESULT;
    if (route == Bf16Gemm.ONEDNN && !probe.usable()) {
      throw new IllegalArgumentException("cpu: BF16 GEMM route onednn (-D" + Bf16Gemm.PROPERTY + " or "
          + Bf16Gemm.ENVIRONMENT + ") is unusable here: " + probe.failure());
    }
    if (probe != null && probe.usable()) {
      bf16Gemm = Bf16Gemm.ONEDNN;
      oneDnn = new OneDnnGemm();
      bf16GemmReason = probe.description() + (route == Bf16Gemm.AUTO ? ", chosen for this CPU's bf16 arithmetic"
          : ", as asked");
    } else {
      bf16Gemm = Bf16Gemm.OPENBLAS;
      oneDnn = null;
      bf16GemmReason = probe == null ? "as asked" : probe.failure();
    }
  }

  /** Probed once per process, and only when a backend may use oneDNN. */
  private static final class OneDnnProbe {
    static final OneDnnGemm.Probe RESULT = run();

    private static OneDnnGemm.Probe run() {
      try {
        return OneDnnGemm.probe();
      } catch (LinkageError e) { // the preset's classes are missing from the class path
        return new OneDnnGemm.Probe("oneDNN is not on the class path: " + e, null);
      }
    }
  }

  /** The route this backend's BF16 GEMMs take: {@link Bf16Gemm#ONEDNN} or {@link Bf16Gemm#OPENBLAS}. */
  public Bf16Gemm bf16Gemm() {
    return bf16Gemm;
  }

  /** The BF16 GEMM route and why, for {@code plora info}. */
  public String describeBf16Gemm() {
    return bf16Gemm.label() + (bf16Gemm == Bf16Gemm.OPENBLAS ? " (sgemm on widened copies; " : " (")
        + bf16GemmReason + "); force either with -D" + Bf16Gemm.PROPERTY + " or " + Bf16Gemm.ENVIRONMENT
        + "=onednn|openblas";
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
        + CpuKernels.plora_cpu_num_threads() + ", BLAS threads " + blasThreads() + ", BF16 GEMM " + bf16Gemm.label();
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
  protected void gemmImpl(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c,
      int m, int n, int k) {
    if (a.dtype() == DType.F32 && c.dtype() == DType.F32) {
      sgemm(transA, a, transB, b, alpha, beta, c, m, n, k);
      return;
    }
    if (oneDnn != null && a.dtype() == DType.BF16) {
      // oneDNN's AMX kernels read the rows of a non-transposed a past its k columns when they are
      // strided (a NaN there reaches c; docs/decisions.md): such an a is packed first.
      Tensor packedA = !transA && a.ld() != k ? packed(a) : a;
      oneDnn.gemm(transA, packedA, transB, b, alpha, beta, c, m, n, k);
      return;
    }
    // 16-bit storage: widen the operands to fp32, run sgemm, round the result once.
    try (Tensor a32 = widened(a); Tensor b32 = widened(b); Tensor c32 = c.dtype() == DType.F32 ? null : widened(c)) {
      Tensor out = c32 != null ? c32 : c;
      sgemm(transA, a32, transB, b32, alpha, beta, out, m, n, k);
      if (c32 != null) {
        copy(c32, c);
      }
    }
  }

  /** A contiguous copy of {@code t} in this backend's packing buffer, which grows as needed and is kept. */
  private Tensor packed(Tensor t) {
    long bytes = t.elementCount() * t.dtype().byteSize();
    if (packing == null || packing.elementCount() * DType.F32.byteSize() < bytes) {
      if (packing != null) {
        packing.close();
      }
      long words = (bytes + 3) / 4;
      packing = allocate((int) ((words + PACKING_COLS - 1) / PACKING_COLS), PACKING_COLS, DType.F32);
    }
    Tensor copy = packing.carve(0, t.rows(), t.cols(), t.dtype());
    copy(t, copy);
    return copy;
  }

  private Tensor widened(Tensor t) {
    Tensor wide = allocate(t.rows(), t.cols(), DType.F32);
    copy(t, wide);
    return wide;
  }

  private static void sgemm(boolean transA, Tensor a, boolean transB, Tensor b, float alpha, float beta, Tensor c,
      int m, int n, int k) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, m, n, k,
        alpha, NativePointers.floatsAt(a.address()), a.ld(), NativePointers.floatsAt(b.address()), b.ld(), beta,
        NativePointers.floatsAt(c.address()), c.ld());
  }

  @Override
  protected long stream() {
    return 0; // kernels run synchronously on the calling thread
  }

  @Override
  protected long scratch() {
    return 0;
  }

  @Override
  protected long workspace(long bytes) {
    return 0;
  }

  @Override
  protected String lastError() {
    return CpuKernels.lastError();
  }

  @Override
  protected long constant(String name) {
    return CpuKernels.plora_cpu_constant(name);
  }

  @Override
  protected void release() {
    if (packing != null) {
      packing.close();
    }
    if (oneDnn != null) {
      oneDnn.close();
    }
  }
}
