package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "losses" ({@code native/include/plora/losses.h}): a loss and, when asked, its
 * gradient in the same pass; the loss is returned to the host.
 */
public final class Losses {
  private Losses() {}

  /**
   * Mean squared error of pred against target; when {@code dpred} is not null it receives
   * {@code 2(pred − target)/(rows·cols)} (it may be pred itself). Returns the loss.
   */
  public static double mse(Backend backend, Tensor pred, Tensor target, Tensor dpred) {
    synchronized (backend) {
      Args.floats(backend, "mse", "pred", pred);
      Args.tensor(backend, "target", target);
      Args.shape("mse", "target", target, pred.rows(), pred.cols(), "pred " + pred.shape());
      Args.dtype("mse", "target", target, pred.dtype());
      if (dpred != null) {
        Args.tensor(backend, "dpred", dpred);
        Args.shape("mse", "dpred", dpred, pred.rows(), pred.cols(), "pred " + pred.shape());
        Args.dtype("mse", "dpred", dpred, pred.dtype());
        Args.disjoint("mse", "dpred", dpred, "target", target);
        if (!Args.sameElements(pred, dpred)) {
          Args.disjoint("mse", "dpred", dpred, "pred", pred);
        }
      }
      double[] loss = {0};
      long dpredAddress = dpred == null ? 0 : dpred.address();
      long dpredLd = dpred == null ? 0 : dpred.ld();
      if (backend.onCuda()) {
        backend.check(Cuda.plora_cuda_mse(pred.address(), pred.ld(), target.address(), target.ld(),
            pred.dtype().code(), pred.rows(), pred.cols(), loss, dpredAddress, dpredLd, backend.scratch(),
            backend.stream()), "mse");
      } else {
        backend.check(Cpu.plora_cpu_mse(pred.address(), pred.ld(), target.address(), target.ld(),
            pred.dtype().code(), pred.rows(), pred.cols(), loss, dpredAddress, dpredLd), "mse");
      }
      return loss[0];
    }
  }

  /**
   * Mean softmax cross-entropy of logits [M,C] against labels [M,1] (F32 holding class indices
   * 0..C−1); when {@code dlogits} is not null it receives {@code (softmax − onehot)/M}. A label
   * that is not a class index is an {@link IllegalArgumentException} and nothing is written.
   */
  public static double softmaxCrossEntropy(Backend backend, Tensor logits, Tensor labels, Tensor dlogits) {
    synchronized (backend) {
      Args.floats(backend, "softmaxCrossEntropy", "logits", logits);
      Args.tensor(backend, "labels", labels);
      Args.shape("softmaxCrossEntropy", "labels", labels, logits.rows(), 1, "logits " + logits.shape());
      Args.dtype("softmaxCrossEntropy", "labels", labels, DType.F32);
      if (!labels.isContiguous()) {
        throw new IllegalArgumentException("softmaxCrossEntropy: labels must be contiguous, got " + labels);
      }
      if (dlogits != null) {
        Args.tensor(backend, "dlogits", dlogits);
        Args.shape("softmaxCrossEntropy", "dlogits", dlogits, logits.rows(), logits.cols(),
            "logits " + logits.shape());
        Args.dtype("softmaxCrossEntropy", "dlogits", dlogits, logits.dtype());
        Args.disjoint("softmaxCrossEntropy", "dlogits", dlogits, new String[] {"logits", "labels"}, logits, labels);
      }
      double[] loss = {0};
      long[] bad = {0};
      long dlogitsAddress = dlogits == null ? 0 : dlogits.address();
      long dlogitsLd = dlogits == null ? 0 : dlogits.ld();
      int status = backend.onCuda()
          ? Cuda.plora_cuda_softmax_xent(logits.address(), logits.ld(), logits.dtype().code(), logits.rows(),
              logits.cols(), labels.address(), loss, dlogitsAddress, dlogitsLd, bad, backend.scratch(),
              backend.stream())
          : Cpu.plora_cpu_softmax_xent(logits.address(), logits.ld(), logits.dtype().code(), logits.rows(),
              logits.cols(), labels.address(), loss, dlogitsAddress, dlogitsLd, bad);
      if (bad[0] > 0) { // only the kernel can read the labels: it counts the bad ones and writes nothing
        throw new IllegalArgumentException("softmaxCrossEntropy: labels: " + bad[0] + " of " + labels.rows()
            + " are not class indices in [0, " + logits.cols() + ")");
      }
      backend.check(status, "softmax cross-entropy");
      return loss[0];
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/losses.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_mse(@Cast("const void*") long pred, @Cast("int64_t") long ldPred,
        @Cast("const void*") long target, @Cast("int64_t") long ldTarget, int dtype, @Cast("int64_t") long rows,
        @Cast("int64_t") long cols, double[] loss, @Cast("void*") long dpred, @Cast("int64_t") long ldDpred);

    static native int plora_cpu_softmax_xent(@Cast("const void*") long logits, @Cast("int64_t") long ldLogits,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("const float*") long labels,
        double[] loss, @Cast("void*") long dlogits, @Cast("int64_t") long ldDlogits,
        @Cast("int64_t*") long[] badLabels);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/losses.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_mse(@Cast("const void*") long pred, @Cast("int64_t") long ldPred,
        @Cast("const void*") long target, @Cast("int64_t") long ldTarget, int dtype, @Cast("int64_t") long rows,
        @Cast("int64_t") long cols, double[] loss, @Cast("void*") long dpred, @Cast("int64_t") long ldDpred,
        @Cast("void*") long scratch, @Cast("void*") long stream);

    static native int plora_cuda_softmax_xent(@Cast("const void*") long logits, @Cast("int64_t") long ldLogits,
        int dtype, @Cast("int64_t") long rows, @Cast("int64_t") long cols, @Cast("const float*") long labels,
        double[] loss, @Cast("void*") long dlogits, @Cast("int64_t") long ldDlogits,
        @Cast("int64_t*") long[] badLabels, @Cast("void*") long scratch, @Cast("void*") long stream);
  }
}
