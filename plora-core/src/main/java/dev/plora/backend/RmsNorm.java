package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "rmsnorm" ({@code native/include/plora/rmsnorm.h}): RMSNorm as Hugging Face's
 * LlamaRMSNorm computes it — normalised in fp32, rounded to the model dtype, then scaled by the
 * weight — and its backward pass.
 */
public final class RmsNorm {
  private RmsNorm() {}

  /**
   * {@code y ← w ⊙ x·rstd} per row with {@code rstd = 1/√(mean(x²) + eps)}; y may be x itself.
   *
   * @param w the weight, [1, cols] of x's dtype
   * @param rstd F32 [rows, 1], contiguous, receives each row's rstd for the backward pass; may be null
   */
  public static void forward(Backend backend, Tensor x, Tensor w, float eps, Tensor y, Tensor rstd) {
    synchronized (backend) {
      Args.floats(backend, "rmsnorm", "x", x);
      weight(backend, "rmsnorm", x, w);
      Args.like(backend, "rmsnorm", "y", y, "x", x);
      if (!Args.sameElements(x, y)) {
        Args.disjoint("rmsnorm", "y", y, "x", x);
      }
      Args.disjoint("rmsnorm", "y", y, "w", w);
      if (!(eps > 0 && Float.isFinite(eps))) {
        throw new IllegalArgumentException("rmsnorm: eps: expected a finite value > 0, got " + eps);
      }
      if (rstd != null) {
        Args.rowFloats(backend, "rmsnorm", "rstd", rstd, x.rows(), "x's rows");
        Args.disjoint("rmsnorm", "rstd", rstd, new String[] {"x", "w", "y"}, x, w, y);
      }
      long rstdAddress = rstd == null ? 0 : rstd.address();
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_rmsnorm(x.address(), x.ld(), w.address(), y.address(), y.ld(), rstdAddress,
            x.dtype().code(), x.rows(), x.cols(), eps, backend.stream()), "rmsnorm");
      } else {
        backend.check(Cpu.plora_cpu_rmsnorm(x.address(), x.ld(), w.address(), y.address(), y.ld(), rstdAddress,
            x.dtype().code(), x.rows(), x.cols(), eps), "rmsnorm");
      }
    }
  }

  /**
   * {@code dx ← rstd·(g − x̂·mean(g⊙x̂))} with {@code x̂ = x·rstd}, {@code g = dy⊙w}, and, when dw is
   * not null, {@code dw += Σ_rows dy⊙x̂}; dx may be dy itself.
   *
   * @param rstd the forward pass's F32 [rows, 1]
   * @param dw F32 [1, cols], contiguous, accumulated; null for a frozen weight
   */
  public static void backward(Backend backend, Tensor x, Tensor w, Tensor rstd, Tensor dy, Tensor dx, Tensor dw) {
    synchronized (backend) {
      Args.floats(backend, "rmsnormBackward", "x", x);
      weight(backend, "rmsnormBackward", x, w);
      Args.rowFloats(backend, "rmsnormBackward", "rstd", rstd, x.rows(), "x's rows");
      Args.like(backend, "rmsnormBackward", "dy", dy, "x", x);
      Args.like(backend, "rmsnormBackward", "dx", dx, "x", x);
      if (!Args.sameElements(dx, dy)) {
        Args.disjoint("rmsnormBackward", "dx", dx, "dy", dy);
      }
      Args.disjoint("rmsnormBackward", "dx", dx, new String[] {"x", "w", "rstd"}, x, w, rstd);
      if (dw != null) {
        Args.tensor(backend, "dw", dw);
        Args.shape("rmsnormBackward", "dw", dw, 1, x.cols(), "x " + x.shape());
        Args.dtype("rmsnormBackward", "dw", dw, DType.F32);
        Args.disjoint("rmsnormBackward", "dw", dw, new String[] {"x", "w", "rstd", "dy", "dx"}, x, w, rstd, dy, dx);
      }
      long dwAddress = dw == null ? 0 : dw.address();
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_rmsnorm_backward(x.address(), x.ld(), w.address(), rstd.address(), dy.address(),
            dy.ld(), dx.address(), dx.ld(), dwAddress, x.dtype().code(), x.rows(), x.cols(), backend.stream()),
            "rmsnorm backward");
      } else {
        backend.check(Cpu.plora_cpu_rmsnorm_backward(x.address(), x.ld(), w.address(), rstd.address(), dy.address(),
            dy.ld(), dx.address(), dx.ld(), dwAddress, x.dtype().code(), x.rows(), x.cols()), "rmsnorm backward");
      }
    }
  }

  private static void weight(Backend backend, String op, Tensor x, Tensor w) {
    Args.tensor(backend, "w", w);
    Args.shape(op, "w", w, 1, x.cols(), "x " + x.shape());
    Args.dtype(op, "w", w, x.dtype());
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/rmsnorm.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_rmsnorm(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long w, @Cast("void*") long y, @Cast("int64_t") long ldY, @Cast("float*") long rstd,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols, float eps);

    static native int plora_cpu_rmsnorm_backward(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long w, @Cast("const float*") long rstd, @Cast("const void*") long dy,
        @Cast("int64_t") long ldDy, @Cast("void*") long dx, @Cast("int64_t") long ldDx, @Cast("float*") long dw,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/rmsnorm.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_rmsnorm(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long w, @Cast("void*") long y, @Cast("int64_t") long ldY, @Cast("float*") long rstd,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols, float eps, @Cast("void*") long stream);

    static native int plora_cuda_rmsnorm_backward(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long w, @Cast("const float*") long rstd, @Cast("const void*") long dy,
        @Cast("int64_t") long ldDy, @Cast("void*") long dx, @Cast("int64_t") long ldDx, @Cast("float*") long dw,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("void*") long stream);
  }
}
