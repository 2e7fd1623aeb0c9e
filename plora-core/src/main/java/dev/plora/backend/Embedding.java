package dev.plora.backend;

import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.annotation.Cast;
import org.bytedeco.javacpp.annotation.Platform;
import org.bytedeco.javacpp.annotation.Properties;

/**
 * Kernel family "embedding" ({@code native/include/plora/embedding.h}): rows of an embedding table
 * gathered by I32 token ids, and the scatter-add of their gradient (full fine-tuning).
 */
public final class Embedding {
  private Embedding() {}

  /**
   * {@code out[t] ← table[ids[t]]}, converted to out's dtype. An id outside {@code [0, vocab)} is
   * an {@link IllegalArgumentException} and nothing is written (only the kernel reads the ids).
   *
   * @param ids I32 [tokens, 1]
   * @param table [vocab, dim]
   * @param out [tokens, dim]
   */
  public static void forward(Backend backend, Tensor ids, Tensor table, Tensor out) {
    synchronized (backend) {
      Args.floats(backend, "embedding", "table", table);
      Args.floats(backend, "embedding", "out", out);
      Args.tokenInts(backend, "embedding", "ids", ids, out.rows(), "out's rows");
      Args.shape("embedding", "out", out, out.rows(), table.cols(), "table " + table.shape());
      Args.disjoint("embedding", "out", out, new String[] {"table", "ids"}, table, ids);
      long[] bad = {0};
      int status = backend.onCuda()
          ? Cuda.plora_cuda_embedding(ids.address(), ids.ld(), table.address(), table.ld(), table.dtype().code(),
              out.address(), out.ld(), out.dtype().code(), out.rows(), table.rows(), table.cols(), bad,
              backend.scratch(), backend.stream())
          : Cpu.plora_cpu_embedding(ids.address(), ids.ld(), table.address(), table.ld(), table.dtype().code(),
              out.address(), out.ld(), out.dtype().code(), out.rows(), table.rows(), table.cols(), bad);
      badIds("embedding", bad[0], ids, table, backend, status);
    }
  }

  /**
   * {@code dtable[ids[t]] += dout[t]} for every token, in token order (deterministic). Ids are
   * checked as in {@link #forward}, before anything is added.
   *
   * @param dtable F32 [vocab, dim], accumulated
   */
  public static void backward(Backend backend, Tensor ids, Tensor dout, Tensor dtable) {
    synchronized (backend) {
      Args.floats(backend, "embeddingBackward", "dout", dout);
      Args.tokenInts(backend, "embeddingBackward", "ids", ids, dout.rows(), "dout's rows");
      Args.tensor(backend, "dtable", dtable);
      Args.dtype("embeddingBackward", "dtable", dtable, DType.F32);
      Args.shape("embeddingBackward", "dtable", dtable, dtable.rows(), dout.cols(), "dout " + dout.shape());
      Args.disjoint("embeddingBackward", "dtable", dtable, new String[] {"dout", "ids"}, dout, ids);
      long[] bad = {0};
      int status = backend.onCuda()
          ? Cuda.plora_cuda_embedding_backward(ids.address(), ids.ld(), dout.address(), dout.ld(),
              dout.dtype().code(), dtable.address(), dtable.ld(), dout.rows(), dtable.rows(), dtable.cols(), bad,
              backend.scratch(), backend.stream())
          : Cpu.plora_cpu_embedding_backward(ids.address(), ids.ld(), dout.address(), dout.ld(),
              dout.dtype().code(), dtable.address(), dtable.ld(), dout.rows(), dtable.rows(), dtable.cols(), bad);
      badIds("embeddingBackward", bad[0], ids, dtable, backend, status);
    }
  }

  private static void badIds(String op, long bad, Tensor ids, Tensor table, Backend backend, int status) {
    if (bad > 0) { // the library's message names the first bad token and its id
      throw new IllegalArgumentException(op + ": ids: " + bad + " of " + ids.rows() + " are not in [0, "
          + table.rows() + "): " + backend.lastError());
    }
    backend.check(status, op);
  }

  @Properties(inherit = CpuLibrary.class)
  @Platform(include = "plora/embedding.h")
  static final class Cpu {
    static {
      Loader.load();
    }

    private Cpu() {}

    static native int plora_cpu_embedding(@Cast("const int32_t*") long ids, @Cast("int64_t") long ldIds,
        @Cast("const void*") long table, @Cast("int64_t") long ldTable, int tableDtype, @Cast("void*") long out,
        @Cast("int64_t") long ldOut, int outDtype, @Cast("int64_t") long tokens, @Cast("int64_t") long vocab,
        @Cast("int64_t") long dim, @Cast("int64_t*") long[] badIds);

    static native int plora_cpu_embedding_backward(@Cast("const int32_t*") long ids, @Cast("int64_t") long ldIds,
        @Cast("const void*") long dout, @Cast("int64_t") long ldDout, int dtype, @Cast("float*") long dtable,
        @Cast("int64_t") long ldDtable, @Cast("int64_t") long tokens, @Cast("int64_t") long vocab,
        @Cast("int64_t") long dim, @Cast("int64_t*") long[] badIds);
  }

  @Properties(inherit = CudaLibrary.class)
  @Platform(include = "plora/embedding.h")
  static final class Cuda {
    static {
      Loader.load();
    }

    private Cuda() {}

    static native int plora_cuda_embedding(@Cast("const int32_t*") long ids, @Cast("int64_t") long ldIds,
        @Cast("const void*") long table, @Cast("int64_t") long ldTable, int tableDtype, @Cast("void*") long out,
        @Cast("int64_t") long ldOut, int outDtype, @Cast("int64_t") long tokens, @Cast("int64_t") long vocab,
        @Cast("int64_t") long dim, @Cast("int64_t*") long[] badIds, @Cast("void*") long scratch,
        @Cast("void*") long stream);

    static native int plora_cuda_embedding_backward(@Cast("const int32_t*") long ids, @Cast("int64_t") long ldIds,
        @Cast("const void*") long dout, @Cast("int64_t") long ldDout, int dtype, @Cast("float*") long dtable,
        @Cast("int64_t") long ldDtable, @Cast("int64_t") long tokens, @Cast("int64_t") long vocab,
        @Cast("int64_t") long dim, @Cast("int64_t*") long[] badIds, @Cast("void*") long scratch,
        @Cast("void*") long stream);
  }
}
