package dev.plora.backend;

import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "random_fill" ({@code native/include/plora/random_fill.h}): uniform and normal
 * values from the counter-based Philox stream (seed, stream), element i = row·cols + col, the
 * same on every backend.
 */
public final class RandomFill {
  /** {@code enum plora_distribution}, checked against the library at load ({@link NativeAbi}). */
  static final int UNIFORM = 0, NORMAL = 1;

  private RandomFill() {}

  /** Uniform values in [low, high). */
  public static void uniform(Backend backend, Tensor out, float low, float high, long seed, long stream) {
    synchronized (backend) {
      Args.floats(backend, "fillUniform", "out", out);
      Args.finite("low", low);
      Args.finite("high", high);
      if (!(low <= high)) {
        throw new IllegalArgumentException("fillUniform: expected low <= high, got [" + low + ", " + high + ")");
      }
      fill(backend, out, UNIFORM, low, high, seed, stream);
    }
  }

  /** Normal values of {@code mean} and standard deviation {@code std}. */
  public static void normal(Backend backend, Tensor out, float mean, float std, long seed, long stream) {
    synchronized (backend) {
      Args.floats(backend, "fillNormal", "out", out);
      Args.finite("mean", mean);
      Args.finite("std", std);
      if (std < 0) {
        throw new IllegalArgumentException("fillNormal: std: expected >= 0, got " + std);
      }
      fill(backend, out, NORMAL, mean, std, seed, stream);
    }
  }

  private static void fill(Backend backend, Tensor out, int distribution, float a, float b, long seed, long stream) {
    if (backend.onCuda()) {
      backend.check(Cuda.plora_cuda_random_fill(out.address(), out.dtype().code(), out.ld(), out.rows(), out.cols(),
          distribution, a, b, seed, stream, backend.stream()), "random fill");
    } else {
      backend.check(Cpu.plora_cpu_random_fill(out.address(), out.dtype().code(), out.ld(), out.rows(), out.cols(),
          distribution, a, b, seed, stream), "random fill");
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/random_fill.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_random_fill(@Cast("void*") long out, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, int distribution, float a, float b,
        @Cast("uint64_t") long seed, @Cast("uint64_t") long stream);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/random_fill.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_random_fill(@Cast("void*") long out, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, int distribution, float a, float b,
        @Cast("uint64_t") long seed, @Cast("uint64_t") long streamId, @Cast("void*") long stream);
  }
}
