package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.backend.CrossEntropy;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;

/**
 * A language model's head fused with its token cross-entropy: {@code logits = hidden·Wᵀ}, the mean
 * loss over the scored tokens, and the gradients of hidden and W, computed a chunk of tokens at a
 * time so that the [tokens, vocab] logits and their gradient are never held whole (one
 * [chunkRows, vocab] buffer serves as both). Logits are in the model's dtype, as Hugging Face
 * computes them, and the loss of each is taken in fp32.
 */
public final class LmHeadLoss implements AutoCloseable {
  /** Budget of the logits buffer when no chunk size is given. */
  public static final long DEFAULT_CHUNK_BYTES = 64L << 20;

  private final Backend backend;
  private final Tensor logits;

  /** The result of one pass: the mean loss over {@code tokens} scored tokens. */
  public record Result(double loss, long tokens) {}

  /** A head for {@code vocab} classes in {@code dtype}, over chunks of at most {@code chunkRows} tokens. */
  public LmHeadLoss(Backend backend, int vocab, DType dtype, int chunkRows) {
    if (backend == null) {
      throw new IllegalArgumentException("backend: must not be null");
    }
    if (vocab < 1 || chunkRows < 1) {
      throw new IllegalArgumentException("vocab and chunkRows: expected >= 1, got " + vocab + " and " + chunkRows);
    }
    if (dtype == null || !dtype.isFloat()) {
      throw new IllegalArgumentException("dtype: expected F32, BF16 or F16, got " + dtype);
    }
    this.backend = backend;
    this.logits = backend.allocate(chunkRows, vocab, dtype);
  }

  /** Chunks of as many tokens as fit {@link #DEFAULT_CHUNK_BYTES}. */
  public LmHeadLoss(Backend backend, int vocab, DType dtype) {
    this(backend, vocab, dtype, (int) Math.max(1, Math.min(1 << 20, DEFAULT_CHUNK_BYTES / ((long) vocab
        * (dtype == null ? 4 : dtype.byteSize())))));
  }

  public int chunkRows() {
    return logits.rows();
  }

  /**
   * The mean cross-entropy of {@code hidden·Wᵀ} against {@code targets} over the tokens whose target
   * is not {@link CrossEntropy#IGNORE_INDEX}; with {@code dhidden} (assigned) and {@code dweight}
   * (accumulated, F32) not null, also their gradients. A batch with no scored token is refused: its
   * mean is undefined and training on it would be silent.
   *
   * @param hidden [tokens, hidden] in the head's dtype
   * @param weight [vocab, hidden] in the head's dtype (lm_head, or the tied embedding table)
   * @param targets I32 [tokens, 1]: the token each position predicts (labels shifted by one)
   * @param scoredTokens how many targets are not the ignore index, as the host built them (the
   *     gradient's scale must be known before the first chunk; the kernels' count is checked
   *     against it)
   */
  public Result forward(Tensor hidden, Tensor weight, Tensor targets, long scoredTokens, Tensor dhidden,
      Tensor dweight) {
    requireOpen();
    int vocab = logits.cols();
    if (hidden == null) {
      throw new IllegalArgumentException("hidden: must not be null");
    }
    int tokens = hidden.rows();
    check("hidden", hidden, tokens, hidden.cols(), logits.dtype());
    check("weight", weight, vocab, hidden.cols(), logits.dtype());
    check("targets", targets, tokens, 1, DType.I32);
    if (dhidden != null) {
      check("dhidden", dhidden, tokens, hidden.cols(), logits.dtype());
    }
    if (dweight != null) {
      check("dweight", dweight, vocab, hidden.cols(), DType.F32);
    }
    if (scoredTokens < 1 || scoredTokens > tokens) {
      throw new IllegalArgumentException("scoredTokens: expected 1 to " + tokens + " (a batch with no scored token "
          + "has no mean loss), got " + scoredTokens);
    }
    boolean gradients = dhidden != null || dweight != null;
    float scale = (float) (1.0 / scoredTokens);
    double sum = 0;
    long counted = 0;
    for (int row = 0; row < tokens; row += chunkRows()) {
      int rows = Math.min(chunkRows(), tokens - row);
      Tensor chunk = logits.rowsView(0, rows), h = hidden.rowsView(row, rows);
      backend.gemm(false, h, true, weight, 1f, 0f, chunk);
      CrossEntropy.Sum part = CrossEntropy.forward(backend, chunk, targets.rowsView(row, rows), scale,
          gradients ? chunk : null);
      sum += part.loss();
      counted += part.tokens();
      if (dhidden != null) {
        backend.gemm(false, chunk, false, weight, 1f, 0f, dhidden.rowsView(row, rows));
      }
      if (dweight != null) {
        backend.gemm(true, chunk, false, h, 1f, 1f, dweight);
      }
    }
    if (counted != scoredTokens) {
      throw new IllegalArgumentException("scoredTokens: the targets hold " + counted + " scored tokens, not "
          + scoredTokens + " (the loss and gradients of this call are scaled wrongly)");
    }
    return new Result(sum / counted, counted);
  }

  private void check(String name, Tensor t, int rows, int cols, DType dtype) {
    if (t == null) {
      throw new IllegalArgumentException(name + ": must not be null");
    }
    if (t.rows() != rows || t.cols() != cols || t.dtype() != dtype) {
      throw new IllegalArgumentException(name + ": expected [" + rows + "," + cols + "] "
          + dtype + ", got " + t.shape() + " " + t.dtype());
    }
  }

  private void requireOpen() {
    if (logits.isClosed()) {
      throw new IllegalStateException("LmHeadLoss is closed");
    }
  }

  @Override
  public void close() {
    logits.close();
  }
}
