package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/** Kernel family "merge" ({@code native/include/plora/merge.h}): PLoRA unloading and LoRA merges. */
public final class Merge {
  private Merge() {}

  /**
   * In-place merge {@code w ← w + c·b·a} with fp32 accumulation, rounded into w's dtype as asked
   * (stochastic rounding draws from Philox (seed, stream)); then, in the same call, {@code a ←
   * scaleA·a} and {@code b ← scaleB·b}. w [N,K], b [N,r], a [r,K]; a and b share a dtype.
   */
  public static void merge(Backend backend, Tensor w, Tensor b, Tensor a, float c, Rounding rounding, long seed,
      long stream, float scaleA, float scaleB) {
    synchronized (backend) {
      Args.floats(backend, "merge", "w", w);
      Args.tensor(backend, "b", b);
      Args.floats(backend, "merge", "a", a);
      Args.notNull("rounding", rounding, "");
      int r = a.rows();
      Args.shape("merge", "b", b, w.rows(), r, "w " + w.shape() + " and a " + a.shape());
      Args.shape("merge", "a", a, r, w.cols(), "w " + w.shape() + " (a is [r,K])");
      Args.dtype("merge", "b", b, a.dtype());
      if (rounding == Rounding.STOCHASTIC && w.dtype() == DType.F16) {
        throw new IllegalArgumentException("merge: stochastic rounding needs BF16 (or F32) w, got F16");
      }
      Args.disjoint("merge", "w", w, new String[] {"a", "b"}, a, b);
      Args.disjoint("merge", "a", a, "b", b);
      Args.finite("c", c);
      Args.finite("scaleA", scaleA);
      Args.finite("scaleB", scaleB);
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_merge(w.address(), w.dtype().code(), w.ld(), b.address(), b.ld(), a.address(),
            a.ld(), a.dtype().code(), w.rows(), w.cols(), a.rows(), c, rounding.code(), seed, stream, scaleA, scaleB,
            backend.stream()), "merge");
      } else {
        backend.check(Cpu.plora_cpu_merge(w.address(), w.dtype().code(), w.ld(), b.address(), b.ld(), a.address(),
            a.ld(), a.dtype().code(), w.rows(), w.cols(), a.rows(), c, rounding.code(), seed, stream, scaleA, scaleB),
            "merge");
      }
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/merge.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_merge(@Cast("void*") long w, int wDtype, @Cast("int64_t") long ldW,
        @Cast("void*") long b, @Cast("int64_t") long ldB, @Cast("void*") long a, @Cast("int64_t") long ldA,
        int abDtype, @Cast("int64_t") long n, @Cast("int64_t") long k, @Cast("int64_t") long r, float c,
        int rounding, @Cast("uint64_t") long seed, @Cast("uint64_t") long stream, float scaleA, float scaleB);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/merge.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_merge(@Cast("void*") long w, int wDtype, @Cast("int64_t") long ldW,
        @Cast("void*") long b, @Cast("int64_t") long ldB, @Cast("void*") long a, @Cast("int64_t") long ldA,
        int abDtype, @Cast("int64_t") long n, @Cast("int64_t") long k, @Cast("int64_t") long r, float c,
        int rounding, @Cast("uint64_t") long seed, @Cast("uint64_t") long streamId, float scaleA, float scaleB,
        @Cast("void*") long stream);
  }
}
