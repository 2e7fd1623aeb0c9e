package dev.plora.backend;

import dev.plora.tensor.Tensor;
import java.util.List;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "reductions" ({@code native/include/plora/reductions.h}): numbers returned to
 * the host, each waiting for queued work once.
 */
public final class Reductions {
  private Reductions() {}

  /** Σ x² in double. */
  public static double sumSquares(Backend backend, Tensor x) {
    synchronized (backend) {
      Args.floats(backend, "sumSquares", "x", x);
      return sum(backend, List.of(x));
    }
  }

  /**
   * Σ x² over all the tensors, summed tensor by tensor in order, in one native call that waits
   * for queued work once (a global gradient norm without a device round trip per parameter).
   */
  public static double sumSquares(Backend backend, List<Tensor> xs) {
    synchronized (backend) {
      Args.open(backend);
      Args.notNull("xs", xs, "");
      for (int i = 0; i < xs.size(); i++) {
        Args.floats(backend, "sumSquares", "xs[" + i + "]", xs.get(i));
      }
      return xs.isEmpty() ? 0.0 : sum(backend, xs);
    }
  }

  private static double sum(Backend backend, List<Tensor> xs) {
    Backend.MatrixTable t = new Backend.MatrixTable(xs);
    double[] out = {0};
    if (backend.onCuda()) {
      backend.check(Cuda.plora_cuda_sum_squares_many(xs.size(), t.address, t.dtype, t.ld, t.rows, t.cols, out,
          backend.scratch(), backend.stream()), "sum of squares");
    } else {
      backend.check(Cpu.plora_cpu_sum_squares_many(xs.size(), t.address, t.dtype, t.ld, t.rows, t.cols, out),
          "sum of squares");
    }
    return out[0];
  }

  /** The number of NaN and infinite elements of {@code x}. */
  public static long countNonFinite(Backend backend, Tensor x) {
    synchronized (backend) {
      Args.floats(backend, "countNonFinite", "x", x);
      long[] count = {0};
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_count_nonfinite(x.address(), x.dtype().code(), x.ld(), x.rows(), x.cols(),
            backend.scratch(), count, backend.stream()), "non-finite count");
      } else {
        backend.check(Cpu.plora_cpu_count_nonfinite(x.address(), x.dtype().code(), x.ld(), x.rows(), x.cols(),
            count), "non-finite count");
      }
      return count[0];
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/reductions.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_count_nonfinite(@Cast("const void*") long x, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("int64_t*") long[] count);

    static native int plora_cpu_sum_squares_many(int count, @Cast("const int64_t*") long[] x,
        @Cast("const int*") int[] dtypes, @Cast("const int64_t*") long[] ld, @Cast("const int64_t*") long[] rows,
        @Cast("const int64_t*") long[] cols, double[] out);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/reductions.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_count_nonfinite(@Cast("const void*") long x, int dtype, @Cast("int64_t") long ld,
        @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("void*") long deviceCounter,
        @Cast("int64_t*") long[] count, @Cast("void*") long stream);

    static native int plora_cuda_sum_squares_many(int count, @Cast("const int64_t*") long[] x,
        @Cast("const int*") int[] dtypes, @Cast("const int64_t*") long[] ld, @Cast("const int64_t*") long[] rows,
        @Cast("const int64_t*") long[] cols, double[] out, @Cast("void*") long scratch, @Cast("void*") long stream);
  }
}
