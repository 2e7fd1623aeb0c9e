package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "elementwise" ({@code native/include/plora/elementwise.h}): copies, fills, axpby
 * and bias addition. Each call validates its arguments, naming them, under the backend's lock and
 * before any native call.
 */
public final class Elementwise {
  private Elementwise() {}

  /**
   * {@code dst ← src}, converting between the float dtypes (round to nearest); I32 copies only to
   * I32. Shapes must match.
   */
  public static void copy(Backend backend, Tensor src, Tensor dst) {
    synchronized (backend) {
      Args.tensor(backend, "src", src);
      Args.tensor(backend, "dst", dst);
      Args.shape("copy", "dst", dst, src.rows(), src.cols(), "src " + src.shape());
      if ((src.dtype() == DType.I32) != (dst.dtype() == DType.I32)) {
        throw new IllegalArgumentException("copy: src has dtype " + src.dtype() + " but dst has " + dst.dtype()
            + ": I32 copies only to I32");
      }
      Args.disjoint("copy", "dst", dst, "src", src);
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_copy(src.address(), src.dtype().code(), src.ld(), dst.address(),
            dst.dtype().code(), dst.ld(), src.rows(), src.cols(), backend.stream()), "copy");
      } else {
        backend.check(Cpu.plora_cpu_copy(src.address(), src.dtype().code(), src.ld(), dst.address(),
            dst.dtype().code(), dst.ld(), src.rows(), src.cols()), "copy");
      }
    }
  }

  /** Every element of {@code dst} ← {@code value}, rounded to its dtype; for I32 an integer in int range. */
  public static void fill(Backend backend, Tensor dst, float value) {
    synchronized (backend) {
      Args.tensor(backend, "dst", dst);
      if (dst.dtype() == DType.I32 && !(value >= -0x1p31f && value < 0x1p31f && value == Math.rint(value))) {
        throw new IllegalArgumentException("fill: value: expected an integer in [-2^31, 2^31) for the I32 dst "
            + dst + ", got " + value);
      }
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_fill(dst.address(), dst.dtype().code(), dst.ld(), dst.rows(), dst.cols(),
            value, backend.stream()), "fill");
      } else {
        backend.check(Cpu.plora_cpu_fill(dst.address(), dst.dtype().code(), dst.ld(), dst.rows(), dst.cols(),
            value), "fill");
      }
    }
  }

  /** {@code y ← alpha·x + beta·y} (y is not read when beta = 0); the float dtypes may differ. */
  public static void axpby(Backend backend, float alpha, Tensor x, float beta, Tensor y) {
    synchronized (backend) {
      Args.floats(backend, "axpby", "x", x);
      Args.floats(backend, "axpby", "y", y);
      Args.shape("axpby", "y", y, x.rows(), x.cols(), "x " + x.shape());
      Args.finite("alpha", alpha);
      Args.finite("beta", beta);
      if (!Args.sameElements(x, y)) {
        Args.disjoint("axpby", "y", y, "x", x); // elementwise in place is fine, a shifted overlap is not
      }
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_axpby(alpha, x.address(), x.dtype().code(), x.ld(), beta, y.address(),
            y.dtype().code(), y.ld(), x.rows(), x.cols(), backend.stream()), "axpby");
      } else {
        backend.check(Cpu.plora_cpu_axpby(alpha, x.address(), x.dtype().code(), x.ld(), beta, y.address(),
            y.dtype().code(), y.ld(), x.rows(), x.cols()), "axpby");
      }
    }
  }

  /** {@code y[i,:] += bias[0,:]} for bias [1,N]. */
  public static void addBias(Backend backend, Tensor y, Tensor bias) {
    synchronized (backend) {
      Args.floats(backend, "addBias", "y", y);
      Args.floats(backend, "addBias", "bias", bias);
      Args.shape("addBias", "bias", bias, 1, y.cols(), "y " + y.shape());
      Args.disjoint("addBias", "y", y, "bias", bias);
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_add_bias(y.address(), y.dtype().code(), y.ld(), y.rows(), y.cols(),
            bias.address(), bias.dtype().code(), backend.stream()), "bias add");
      } else {
        backend.check(Cpu.plora_cpu_add_bias(y.address(), y.dtype().code(), y.ld(), y.rows(), y.cols(),
            bias.address(), bias.dtype().code()), "bias add");
      }
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/elementwise.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_copy(@Cast("const void*") long src, int srcDtype, @Cast("int64_t") long ldSrc,
        @Cast("void*") long dst, int dstDtype, @Cast("int64_t") long ldDst, @Cast("int64_t") long rows,
        @Cast("int64_t") long cols);

    static native int plora_cpu_fill(@Cast("void*") long dst, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, float value);

    static native int plora_cpu_axpby(float alpha, @Cast("const void*") long x, int xDtype,
        @Cast("int64_t") long ldX, float beta, @Cast("void*") long y, int yDtype, @Cast("int64_t") long ldY,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols);

    static native int plora_cpu_add_bias(@Cast("void*") long y, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("const void*") long bias, int biasDtype);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/elementwise.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_copy(@Cast("const void*") long src, int srcDtype, @Cast("int64_t") long ldSrc,
        @Cast("void*") long dst, int dstDtype, @Cast("int64_t") long ldDst, @Cast("int64_t") long rows,
        @Cast("int64_t") long cols, @Cast("void*") long stream);

    static native int plora_cuda_fill(@Cast("void*") long dst, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, float value, @Cast("void*") long stream);

    static native int plora_cuda_axpby(float alpha, @Cast("const void*") long x, int xDtype,
        @Cast("int64_t") long ldX, float beta, @Cast("void*") long y, int yDtype, @Cast("int64_t") long ldY,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("void*") long stream);

    static native int plora_cuda_add_bias(@Cast("void*") long y, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("const void*") long bias, int biasDtype,
        @Cast("void*") long stream);
  }
}
