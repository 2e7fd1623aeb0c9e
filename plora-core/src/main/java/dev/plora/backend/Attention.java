package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "attention" ({@code native/include/plora/attention.h}): causal grouped-query
 * attention over packed documents, FlashAttention style (tiles and an online softmax; only the
 * log-sum-exp is kept for the backward pass).
 *
 * <p>Tokens are rows and heads column blocks: q is {@code [T, heads·D]}, k and v are
 * {@code [T, kvHeads·D]} (they may be column views of one fused buffer), query head h reads kv
 * head {@code h / (heads / kvHeads)}. {@code seqStart} is a contiguous I32 {@code [T, 1]}: the row
 * of the first token of each token's document (0 for row 0, then the previous row's value or the
 * row itself), and token t attends to rows {@code seqStart[t] .. t}. {@code lse} is F32
 * {@code [T, heads]}. Arithmetic in fp32; q, k, v, out and the gradients share one storage dtype.
 */
public final class Attention {
  /**
   * The largest head dimension the kernels take: {@code PLORA_ATTENTION_MAX_HEAD_DIM}, which both
   * libraries check again themselves.
   */
  public static final int MAX_HEAD_DIM = 256;

  private Attention() {}

  /**
   * {@code out[t, h] = Σ_s softmax_s(scale·q_t·k_s) v_s} over the keys t sees, and
   * {@code lse[t, h] = log Σ_s exp(scale·q_t·k_s)}. A seqStart that is not a valid document
   * boundary list is an {@link IllegalArgumentException} and nothing is written.
   */
  public static void forward(Backend backend, Tensor q, Tensor k, Tensor v, Tensor seqStart, float scale, int heads,
      int kvHeads, Tensor out, Tensor lse) {
    synchronized (backend) {
      int dim = inputs(backend, "attention", q, k, v, seqStart, scale, heads, kvHeads);
      outputs(backend, "attention", q, heads, out, lse);
      Args.disjoint("attention", "out", out, new String[] {"q", "k", "v", "seqStart", "lse"}, q, k, v, seqStart, lse);
      Args.disjoint("attention", "lse", lse, new String[] {"q", "k", "v", "seqStart"}, q, k, v, seqStart);
      long[] bad = {0};
      int status = backend.onCuda()
          ? Cuda.plora_cuda_attention_forward(q.address(), q.ld(), k.address(), k.ld(), v.address(), v.ld(),
              seqStart.address(), q.dtype().code(), q.rows(), heads, kvHeads, dim, scale, out.address(), out.ld(),
              lse.address(), lse.ld(), bad, backend.scratch(), backend.stream())
          : Cpu.plora_cpu_attention_forward(q.address(), q.ld(), k.address(), k.ld(), v.address(), v.ld(),
              seqStart.address(), q.dtype().code(), q.rows(), heads, kvHeads, dim, scale, out.address(), out.ld(),
              lse.address(), lse.ld(), bad);
      refuseBadSeqStart("attention", bad[0], q.rows());
      backend.check(status, "attention");
    }
  }

  /**
   * The gradients of a loss L given {@code dout = dL/dout}, from the forward pass's out and lse
   * (same q, k, v, seqStart, scale, heads): dq, dk and dv are assigned, dk and dv of a kv head
   * summing its query heads' contributions. Deterministic on the host.
   */
  public static void backward(Backend backend, Tensor q, Tensor k, Tensor v, Tensor seqStart, float scale, int heads,
      int kvHeads, Tensor out, Tensor lse, Tensor dout, Tensor dq, Tensor dk, Tensor dv) {
    synchronized (backend) {
      int dim = inputs(backend, "attentionBackward", q, k, v, seqStart, scale, heads, kvHeads);
      outputs(backend, "attentionBackward", q, heads, out, lse);
      Args.tensor(backend, "dout", dout);
      Args.shape("attentionBackward", "dout", dout, q.rows(), q.cols(), "q " + q.shape());
      Args.dtype("attentionBackward", "dout", dout, q.dtype());
      gradient(backend, "dq", dq, q);
      gradient(backend, "dk", dk, k);
      gradient(backend, "dv", dv, v);
      String[] names = {"q", "k", "v", "seqStart", "out", "lse", "dout"};
      Tensor[] inputs = {q, k, v, seqStart, out, lse, dout};
      Args.disjoint("attentionBackward", "dq", dq, names, inputs);
      Args.disjoint("attentionBackward", "dk", dk, names, inputs);
      Args.disjoint("attentionBackward", "dv", dv, names, inputs);
      Args.disjoint("attentionBackward", "dq", dq, new String[] {"dk", "dv"}, dk, dv);
      Args.disjoint("attentionBackward", "dk", dk, "dv", dv);
      long[] bad = {0};
      int status = backend.onCuda()
          ? Cuda.plora_cuda_attention_backward(q.address(), q.ld(), k.address(), k.ld(), v.address(), v.ld(),
              out.address(), out.ld(), dout.address(), dout.ld(), lse.address(), lse.ld(), seqStart.address(),
              q.dtype().code(), q.rows(), heads, kvHeads, dim, scale, dq.address(), dq.ld(), dk.address(), dk.ld(),
              dv.address(), dv.ld(), bad, backend.scratch(), backend.stream())
          : Cpu.plora_cpu_attention_backward(q.address(), q.ld(), k.address(), k.ld(), v.address(), v.ld(),
              out.address(), out.ld(), dout.address(), dout.ld(), lse.address(), lse.ld(), seqStart.address(),
              q.dtype().code(), q.rows(), heads, kvHeads, dim, scale, dq.address(), dq.ld(), dk.address(), dk.ld(),
              dv.address(), dv.ld(), bad);
      refuseBadSeqStart("attentionBackward", bad[0], q.rows());
      backend.check(status, "attention backward");
    }
  }

  /** Checks q, k, v, seqStart, scale and the heads; returns the head dimension. */
  private static int inputs(Backend backend, String op, Tensor q, Tensor k, Tensor v, Tensor seqStart, float scale,
      int heads, int kvHeads) {
    Args.floats(backend, op, "q", q);
    Args.tensor(backend, "k", k);
    Args.tensor(backend, "v", v);
    Args.tensor(backend, "seqStart", seqStart);
    if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
      throw new IllegalArgumentException(op + ": heads " + heads + " must be a positive multiple of kvHeads "
          + kvHeads);
    }
    if (q.cols() % heads != 0 || q.cols() / heads > MAX_HEAD_DIM) {
      throw new IllegalArgumentException(op + ": q has shape " + q.shape() + ", expected " + heads
          + " heads of a head dimension in [1, " + MAX_HEAD_DIM + "]");
    }
    int dim = q.cols() / heads;
    String because = "q " + q.shape() + " with " + heads + " heads of " + dim + " and " + kvHeads + " kv heads";
    Args.shape(op, "k", k, q.rows(), kvHeads * dim, because);
    Args.shape(op, "v", v, q.rows(), kvHeads * dim, because);
    Args.dtype(op, "k", k, q.dtype());
    Args.dtype(op, "v", v, q.dtype());
    Args.dtype(op, "seqStart", seqStart, DType.I32);
    Args.shape(op, "seqStart", seqStart, q.rows(), 1, "q " + q.shape());
    if (!seqStart.isContiguous()) {
      throw new IllegalArgumentException(op + ": seqStart must be contiguous, got " + seqStart);
    }
    Args.finite("scale", scale);
    return dim;
  }

  private static void outputs(Backend backend, String op, Tensor q, int heads, Tensor out, Tensor lse) {
    Args.tensor(backend, "out", out);
    Args.shape(op, "out", out, q.rows(), q.cols(), "q " + q.shape());
    Args.dtype(op, "out", out, q.dtype());
    Args.tensor(backend, "lse", lse);
    Args.shape(op, "lse", lse, q.rows(), heads, "q " + q.shape() + " with " + heads + " heads");
    Args.dtype(op, "lse", lse, DType.F32);
  }

  private static void gradient(Backend backend, String name, Tensor grad, Tensor of) {
    String ofName = name.substring(1);
    Args.tensor(backend, name, grad);
    Args.shape("attentionBackward", name, grad, of.rows(), of.cols(), ofName + " " + of.shape());
    Args.dtype("attentionBackward", name, grad, of.dtype());
  }

  // only the kernel reads seqStart's values: it counts the rows that break the rule and writes nothing
  private static void refuseBadSeqStart(String op, long bad, int rows) {
    if (bad > 0) {
      throw new IllegalArgumentException(op + ": seqStart: " + bad + " of " + rows + " rows neither start a document"
          + " (seqStart[t] = t) nor continue the previous row's (seqStart[t] = seqStart[t-1]; seqStart[0] = 0)");
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/attention.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_attention_forward(@Cast("const void*") long q, @Cast("int64_t") long ldQ,
        @Cast("const void*") long k, @Cast("int64_t") long ldK, @Cast("const void*") long v,
        @Cast("int64_t") long ldV, @Cast("const int32_t*") long seqStart, int dtype, @Cast("int64_t") long tokens,
        int heads, int kvHeads, int headDim, float scale, @Cast("void*") long out, @Cast("int64_t") long ldOut,
        @Cast("float*") long lse, @Cast("int64_t") long ldLse, @Cast("int64_t*") long[] badSeqStart);

    static native int plora_cpu_attention_backward(@Cast("const void*") long q, @Cast("int64_t") long ldQ,
        @Cast("const void*") long k, @Cast("int64_t") long ldK, @Cast("const void*") long v,
        @Cast("int64_t") long ldV, @Cast("const void*") long out, @Cast("int64_t") long ldOut,
        @Cast("const void*") long dout, @Cast("int64_t") long ldDout, @Cast("const float*") long lse,
        @Cast("int64_t") long ldLse, @Cast("const int32_t*") long seqStart, int dtype,
        @Cast("int64_t") long tokens, int heads, int kvHeads, int headDim, float scale, @Cast("void*") long dq,
        @Cast("int64_t") long ldDq, @Cast("void*") long dk, @Cast("int64_t") long ldDk, @Cast("void*") long dv,
        @Cast("int64_t") long ldDv, @Cast("int64_t*") long[] badSeqStart);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/attention.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_attention_forward(@Cast("const void*") long q, @Cast("int64_t") long ldQ,
        @Cast("const void*") long k, @Cast("int64_t") long ldK, @Cast("const void*") long v,
        @Cast("int64_t") long ldV, @Cast("const int32_t*") long seqStart, int dtype, @Cast("int64_t") long tokens,
        int heads, int kvHeads, int headDim, float scale, @Cast("void*") long out, @Cast("int64_t") long ldOut,
        @Cast("float*") long lse, @Cast("int64_t") long ldLse, @Cast("int64_t*") long[] badSeqStart,
        @Cast("void*") long scratch, @Cast("void*") long stream);

    static native int plora_cuda_attention_backward(@Cast("const void*") long q, @Cast("int64_t") long ldQ,
        @Cast("const void*") long k, @Cast("int64_t") long ldK, @Cast("const void*") long v,
        @Cast("int64_t") long ldV, @Cast("const void*") long out, @Cast("int64_t") long ldOut,
        @Cast("const void*") long dout, @Cast("int64_t") long ldDout, @Cast("const float*") long lse,
        @Cast("int64_t") long ldLse, @Cast("const int32_t*") long seqStart, int dtype,
        @Cast("int64_t") long tokens, int heads, int kvHeads, int headDim, float scale, @Cast("void*") long dq,
        @Cast("int64_t") long ldDq, @Cast("void*") long dk, @Cast("int64_t") long ldDk, @Cast("void*") long dv,
        @Cast("int64_t") long ldDv, @Cast("int64_t*") long[] badSeqStart, @Cast("void*") long scratch,
        @Cast("void*") long stream);
  }
}
