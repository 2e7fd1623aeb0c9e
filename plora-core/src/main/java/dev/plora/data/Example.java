package dev.plora.data;

import dev.plora.backend.CrossEntropy;
import java.util.Arrays;

/**
 * One training document: token ids and, aligned with them, Hugging Face's labels — the id itself
 * where the token is scored, {@link #IGNORE} where it is not. The shift by one (token t predicts
 * label t + 1) happens when batches are packed ({@link dev.plora.model.TokenBatch}), so the label of
 * the first token is never scored.
 */
public record Example(int[] inputIds, int[] labels) {
  /** The label of a token that is not scored, as in PyTorch's cross-entropy. */
  public static final int IGNORE = CrossEntropy.IGNORE_INDEX;

  public Example {
    if (inputIds == null || labels == null || inputIds.length == 0 || labels.length != inputIds.length) {
      throw new IllegalArgumentException("example: expected one label per token and at least one token, got "
          + (inputIds == null ? "no ids" : inputIds.length + " ids") + " and "
          + (labels == null ? "no labels" : labels.length + " labels"));
    }
  }

  public int length() {
    return inputIds.length;
  }

  /** Tokens the loss scores: labels other than {@link #IGNORE} after the first position. */
  public int scoredTokens() {
    int n = 0;
    for (int t = 1; t < labels.length; t++) {
      n += labels[t] != IGNORE ? 1 : 0;
    }
    return n;
  }

  /** The first {@code n} tokens. */
  public Example truncated(int n) {
    return n >= length() ? this : new Example(Arrays.copyOf(inputIds, n), Arrays.copyOf(labels, n));
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Example e && Arrays.equals(inputIds, e.inputIds) && Arrays.equals(labels, e.labels);
  }

  @Override
  public int hashCode() {
    return 31 * Arrays.hashCode(inputIds) + Arrays.hashCode(labels);
  }

  @Override
  public String toString() {
    return "Example[inputIds=" + Arrays.toString(inputIds) + ", labels=" + Arrays.toString(labels) + "]";
  }
}
