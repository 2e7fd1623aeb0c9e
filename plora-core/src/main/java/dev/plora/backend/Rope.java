package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "rope" ({@code native/include/plora/rope.h}): rotary position embedding in place,
 * in Hugging Face's {@code q·cos + rotate_half(q)·sin} form, a position per token (packed
 * sequences restart theirs), and its backward pass.
 */
public final class Rope {
  private Rope() {}

  /**
   * Rotates each head of x in place: for row t and pair j, by the angle {@code positions[t]·invFreq[j]}.
   *
   * @param x [tokens, heads·headDim] of a float dtype (q or k, or a column view of them)
   * @param positions I32 [tokens, 1]
   * @param invFreq F32 [1, headDim/2], contiguous: the inverse frequencies (any scaling applied)
   */
  public static void forward(Backend backend, Tensor x, int heads, Tensor positions, Tensor invFreq) {
    run(backend, "rope", x, heads, positions, invFreq, false);
  }

  /** The gradient through {@link #forward}'s rotation, in place on dx (dL/d(rotated x) on entry). */
  public static void backward(Backend backend, Tensor dx, int heads, Tensor positions, Tensor invFreq) {
    run(backend, "ropeBackward", dx, heads, positions, invFreq, true);
  }

  private static void run(Backend backend, String op, Tensor x, int heads, Tensor positions, Tensor invFreq,
      boolean backward) {
    synchronized (backend) {
      Args.floats(backend, op, "x", x);
      if (heads <= 0 || x.cols() % heads != 0 || (x.cols() / heads) % 2 != 0) {
        throw new IllegalArgumentException(op + ": heads: " + heads + " heads must split x's " + x.cols()
            + " columns into heads of an even head_dim");
      }
      int headDim = x.cols() / heads;
      Args.tokenInts(backend, op, "positions", positions, x.rows(), "x's rows");
      Args.tensor(backend, "invFreq", invFreq);
      Args.shape(op, "invFreq", invFreq, 1, headDim / 2, "head_dim " + headDim);
      Args.dtype(op, "invFreq", invFreq, DType.F32);
      Args.disjoint(op, "x", x, new String[] {"positions", "invFreq"}, positions, invFreq);
      int status;
      if (backend.onCuda()) {
        status = backward
            ? Cuda.plora_cuda_rope_backward(x.address(), x.ld(), x.dtype().code(), x.rows(), heads, headDim,
                positions.address(), positions.ld(), invFreq.address(), backend.stream())
            : Cuda.plora_cuda_rope(x.address(), x.ld(), x.dtype().code(), x.rows(), heads, headDim,
                positions.address(), positions.ld(), invFreq.address(), backend.stream());
      } else {
        status = backward
            ? Cpu.plora_cpu_rope_backward(x.address(), x.ld(), x.dtype().code(), x.rows(), heads, headDim,
                positions.address(), positions.ld(), invFreq.address())
            : Cpu.plora_cpu_rope(x.address(), x.ld(), x.dtype().code(), x.rows(), heads, headDim,
                positions.address(), positions.ld(), invFreq.address());
      }
      backend.check(status, backward ? "rope backward" : "rope");
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/rope.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_rope(@Cast("void*") long x, @Cast("int64_t") long ldX, int dtype,
        @Cast("int64_t") long rows, @Cast("int64_t") long heads, @Cast("int64_t") long headDim,
        @Cast("const int32_t*") long positions, @Cast("int64_t") long ldPos, @Cast("const float*") long invFreq);

    static native int plora_cpu_rope_backward(@Cast("void*") long dx, @Cast("int64_t") long ldDx, int dtype,
        @Cast("int64_t") long rows, @Cast("int64_t") long heads, @Cast("int64_t") long headDim,
        @Cast("const int32_t*") long positions, @Cast("int64_t") long ldPos, @Cast("const float*") long invFreq);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/rope.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_rope(@Cast("void*") long x, @Cast("int64_t") long ldX, int dtype,
        @Cast("int64_t") long rows, @Cast("int64_t") long heads, @Cast("int64_t") long headDim,
        @Cast("const int32_t*") long positions, @Cast("int64_t") long ldPos, @Cast("const float*") long invFreq,
        @Cast("void*") long stream);

    static native int plora_cuda_rope_backward(@Cast("void*") long dx, @Cast("int64_t") long ldDx, int dtype,
        @Cast("int64_t") long rows, @Cast("int64_t") long heads, @Cast("int64_t") long headDim,
        @Cast("const int32_t*") long positions, @Cast("int64_t") long ldPos, @Cast("const float*") long invFreq,
        @Cast("void*") long stream);
  }
}
