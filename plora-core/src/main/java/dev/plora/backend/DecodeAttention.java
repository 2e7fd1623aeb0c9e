package dev.plora.backend;

import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "decode_attention" ({@code native/include/plora/decode_attention.h}): the attention
 * of a few new tokens to a key/value cache, for generation.
 *
 * <p>q is {@code [n, heads·D]}, the new tokens' queries after RoPE. The caches are
 * {@code [maxTokens, kvHeads·D]}: rows {@code 0 .. past-1} hold the keys and values of the past
 * positions and rows {@code past .. past+n-1} those of the new tokens, written by the caller
 * first; nothing past row {@code past+n-1} is read. New token i attends to rows
 * {@code 0 .. past+i} (causal within the new tokens); query head h reads kv head
 * {@code h / (heads / kvHeads)}. Online softmax in fp32; q, the caches and out share one storage
 * dtype. For inference: nothing is kept for a backward pass.
 */
public final class DecodeAttention {
  private DecodeAttention() {}

  /** {@code out[i, h] = Σ_s softmax_s(scale·q_i·k_s) v_s} over {@code s ≤ past + i}. */
  public static void forward(Backend backend, Tensor q, Tensor kCache, Tensor vCache, int past, float scale,
      int heads, int kvHeads, Tensor out) {
    synchronized (backend) {
      String op = "decodeAttention";
      Args.floats(backend, op, "q", q);
      Args.tensor(backend, "kCache", kCache);
      Args.tensor(backend, "vCache", vCache);
      if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
        throw new IllegalArgumentException(op + ": heads " + heads + " must be a positive multiple of kvHeads "
            + kvHeads);
      }
      if (q.cols() % heads != 0 || q.cols() / heads > Attention.MAX_HEAD_DIM) {
        throw new IllegalArgumentException(op + ": q has shape " + q.shape() + ", expected " + heads
            + " heads of a head dimension in [1, " + Attention.MAX_HEAD_DIM + "]");
      }
      int dim = q.cols() / heads, n = q.rows();
      if (past < 0) {
        throw new IllegalArgumentException(op + ": past must not be negative, got " + past);
      }
      String because = "q " + q.shape() + " with " + heads + " heads of " + dim + " and " + kvHeads + " kv heads";
      for (Tensor cache : new Tensor[] {kCache, vCache}) {
        String name = cache == kCache ? "kCache" : "vCache";
        if (cache.cols() != kvHeads * dim) {
          throw new IllegalArgumentException(op + ": " + name + " has shape " + cache.shape() + ", expected "
              + kvHeads * dim + " columns from " + because);
        }
        if ((long) past + n > cache.rows()) {
          throw new IllegalArgumentException(op + ": " + name + " has " + cache.rows() + " rows, expected at least"
              + " past + new tokens = " + past + " + " + n + " = " + ((long) past + n));
        }
        Args.dtype(op, name, cache, q.dtype());
      }
      Args.finite("scale", scale);
      Args.tensor(backend, "out", out);
      Args.shape(op, "out", out, n, q.cols(), "q " + q.shape());
      Args.dtype(op, "out", out, q.dtype());
      Args.disjoint(op, "out", out, new String[] {"q", "kCache", "vCache"}, q, kCache, vCache);
      int status = backend.onCuda()
          ? Cuda.plora_cuda_decode_attention(q.address(), q.ld(), kCache.address(), kCache.ld(), vCache.address(),
              vCache.ld(), q.dtype().code(), n, past, heads, kvHeads, dim, scale, out.address(), out.ld(),
              backend.stream())
          : Cpu.plora_cpu_decode_attention(q.address(), q.ld(), kCache.address(), kCache.ld(), vCache.address(),
              vCache.ld(), q.dtype().code(), n, past, heads, kvHeads, dim, scale, out.address(), out.ld());
      backend.check(status, "decode attention");
    }
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/decode_attention.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_decode_attention(@Cast("const void*") long q, @Cast("int64_t") long ldQ,
        @Cast("const void*") long kCache, @Cast("int64_t") long ldK, @Cast("const void*") long vCache,
        @Cast("int64_t") long ldV, int dtype, @Cast("int64_t") long queries, @Cast("int64_t") long past, int heads,
        int kvHeads, int headDim, float scale, @Cast("void*") long out, @Cast("int64_t") long ldOut);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/decode_attention.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_decode_attention(@Cast("const void*") long q, @Cast("int64_t") long ldQ,
        @Cast("const void*") long kCache, @Cast("int64_t") long ldK, @Cast("const void*") long vCache,
        @Cast("int64_t") long ldV, int dtype, @Cast("int64_t") long queries, @Cast("int64_t") long past, int heads,
        int kvHeads, int headDim, float scale, @Cast("void*") long out, @Cast("int64_t") long ldOut,
        @Cast("void*") long stream);
  }
}
