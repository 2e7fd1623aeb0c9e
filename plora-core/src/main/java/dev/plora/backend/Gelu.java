package dev.plora.backend;

import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/** Kernel family "gelu" ({@code native/include/plora/gelu.h}): the exact (erf) GELU and its derivative. */
public final class Gelu {
  private Gelu() {}

  /** {@code y ← gelu(x)}; y may be x itself. */
  public static void forward(Backend backend, Tensor x, Tensor y) {
    synchronized (backend) {
      Args.floats(backend, "gelu", "x", x);
      Args.tensor(backend, "y", y);
      Args.shape("gelu", "y", y, x.rows(), x.cols(), "x " + x.shape());
      Args.dtype("gelu", "y", y, x.dtype());
      if (!Args.sameElements(x, y)) {
        Args.disjoint("gelu", "y", y, "x", x);
      }
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_gelu(x.address(), x.ld(), y.address(), y.ld(), x.dtype().code(), x.rows(),
            x.cols(), backend.stream()), "gelu");
      } else {
        backend.check(Cpu.plora_cpu_gelu(x.address(), x.ld(), y.address(), y.ld(), x.dtype().code(), x.rows(),
            x.cols()), "gelu");
      }
    }
  }

  /** {@code dx ← dy ⊙ gelu'(x)}; dx may be dy itself. */
  public static void backward(Backend backend, Tensor x, Tensor dy, Tensor dx) {
    synchronized (backend) {
      Args.floats(backend, "geluBackward", "x", x);
      Args.tensor(backend, "dy", dy);
      Args.tensor(backend, "dx", dx);
      Args.shape("geluBackward", "dy", dy, x.rows(), x.cols(), "x " + x.shape());
      Args.shape("geluBackward", "dx", dx, x.rows(), x.cols(), "x " + x.shape());
      Args.dtype("geluBackward", "dy", dy, x.dtype());
      Args.dtype("geluBackward", "dx", dx, x.dtype());
      Args.disjoint("geluBackward", "dx", dx, "x", x);
      if (!Args.sameElements(dy, dx)) {
        Args.disjoint("geluBackward", "dx", dx, "dy", dy);
      }
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_gelu_backward(x.address(), x.ld(), dy.address(), dy.ld(), dx.address(),
            dx.ld(), x.dtype().code(), x.rows(), x.cols(), backend.stream()), "gelu backward");
      } else {
        backend.check(Cpu.plora_cpu_gelu_backward(x.address(), x.ld(), dy.address(), dy.ld(), dx.address(),
            dx.ld(), x.dtype().code(), x.rows(), x.cols()), "gelu backward");
      }
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/gelu.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_gelu(@Cast("const void*") long x, @Cast("int64_t") long ldX, @Cast("void*") long y,
        @Cast("int64_t") long ldY, int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols);

    static native int plora_cpu_gelu_backward(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long dy, @Cast("int64_t") long ldDy, @Cast("void*") long dx,
        @Cast("int64_t") long ldDx, int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/gelu.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_gelu(@Cast("const void*") long x, @Cast("int64_t") long ldX, @Cast("void*") long y,
        @Cast("int64_t") long ldY, int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols,
        @Cast("void*") long stream);

    static native int plora_cuda_gelu_backward(@Cast("const void*") long x, @Cast("int64_t") long ldX,
        @Cast("const void*") long dy, @Cast("int64_t") long ldDy, @Cast("void*") long dx,
        @Cast("int64_t") long ldDx, int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols,
        @Cast("void*") long stream);
  }
}
