package dev.plora.backend;

import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "cross_entropy" ({@code native/include/plora/cross_entropy.h}): a language model's
 * token cross-entropy over one chunk of logits, with Hugging Face's ignore index, and its gradient
 * in the same pass (into the logits themselves, when asked, so a chunk needs one buffer).
 */
public final class CrossEntropy {
  /** Hugging Face's {@code ignore_index}: a target that contributes neither loss nor gradient. */
  public static final int IGNORE_INDEX = -100;

  private CrossEntropy() {}

  /** The summed loss of a chunk and the number of tokens it scored. */
  public record Sum(double loss, long tokens) {}

  /**
   * For each row whose target is not {@link #IGNORE_INDEX}: {@code logsumexp(logits) − logits[target]},
   * summed. When {@code dlogits} is not null it receives {@code gradScale·(softmax − onehot)} on those
   * rows and 0 on the others; it may be logits itself. A target outside {@code [0, vocab)} (other
   * than the ignore index) is an {@link IllegalArgumentException}, and nothing is written.
   *
   * @param logits [rows, vocab]
   * @param targets I32 [rows, 1]: the token each row predicts
   * @param gradScale usually 1 / (scored tokens of the whole batch), so chunks add up to the mean
   */
  public static Sum forward(Backend backend, Tensor logits, Tensor targets, float gradScale, Tensor dlogits) {
    synchronized (backend) {
      Args.floats(backend, "crossEntropy", "logits", logits);
      Args.tokenInts(backend, "crossEntropy", "targets", targets, logits.rows(), "logits' rows");
      Args.finite("gradScale", gradScale);
      if (dlogits != null) {
        Args.like(backend, "crossEntropy", "dlogits", dlogits, "logits", logits);
        Args.disjoint("crossEntropy", "dlogits", dlogits, "targets", targets);
        if (!Args.sameElements(dlogits, logits)) {
          Args.disjoint("crossEntropy", "dlogits", dlogits, "logits", logits);
        }
      }
      double[] loss = {0};
      long[] counted = {0};
      long[] bad = {0};
      long dAddress = dlogits == null ? 0 : dlogits.address();
      long dLd = dlogits == null ? 0 : dlogits.ld();
      int status = backend.onCuda()
          ? Cuda.plora_cuda_cross_entropy(logits.address(), logits.ld(), logits.dtype().code(), logits.rows(),
              logits.cols(), targets.address(), targets.ld(), IGNORE_INDEX, gradScale, loss, counted, dAddress, dLd,
              bad, backend.scratch(), backend.stream())
          : Cpu.plora_cpu_cross_entropy(logits.address(), logits.ld(), logits.dtype().code(), logits.rows(),
              logits.cols(), targets.address(), targets.ld(), IGNORE_INDEX, gradScale, loss, counted, dAddress, dLd,
              bad);
      if (bad[0] > 0) { // only the kernel reads the targets
        throw new IllegalArgumentException("crossEntropy: targets: " + bad[0] + " of " + targets.rows()
            + " are neither token ids in [0, " + logits.cols() + ") nor " + IGNORE_INDEX + ": " + backend.lastError());
      }
      backend.check(status, "cross-entropy");
      return new Sum(loss[0], counted[0]);
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/cross_entropy.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_cross_entropy(@Cast("const void*") long logits, @Cast("int64_t") long ldLogits,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long vocab, @Cast("const int32_t*") long targets,
        @Cast("int64_t") long ldTargets, int ignoreIndex, float gradScale, double[] lossSum,
        @Cast("int64_t*") long[] counted, @Cast("void*") long dlogits, @Cast("int64_t") long ldDlogits,
        @Cast("int64_t*") long[] badTargets);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/cross_entropy.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_cross_entropy(@Cast("const void*") long logits, @Cast("int64_t") long ldLogits,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long vocab, @Cast("const int32_t*") long targets,
        @Cast("int64_t") long ldTargets, int ignoreIndex, float gradScale, double[] lossSum,
        @Cast("int64_t*") long[] counted, @Cast("void*") long dlogits, @Cast("int64_t") long ldDlogits,
        @Cast("int64_t*") long[] badTargets, @Cast("void*") long scratch, @Cast("void*") long stream);
  }
}
