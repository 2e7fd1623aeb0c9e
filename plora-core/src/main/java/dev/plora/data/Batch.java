package dev.plora.data;

import dev.plora.backend.Backend;
import dev.plora.model.TokenBatch;
import java.util.List;

/**
 * One batch on the host: documents as {@link TokenBatch#pack} takes them, each its own attention
 * span. {@code examples} are the dataset indices of the first {@code examples.length} documents;
 * documents after them are padding (all labels {@link Example#IGNORE}).
 */
public record Batch(int[] examples, List<int[]> inputIds, List<int[]> labels) {
  public Batch {
    examples = examples.clone();
    inputIds = List.copyOf(inputIds);
    labels = List.copyOf(labels);
  }

  public int tokens() {
    int n = 0;
    for (int[] doc : inputIds) {
      n += doc.length;
    }
    return n;
  }

  /** Tokens the loss scores, as {@link TokenBatch#scoredTokens} will count them. */
  public long scoredTokens() {
    long n = 0;
    for (int[] lab : labels) {
      for (int t = 1; t < lab.length; t++) {
        n += lab[t] != Example.IGNORE ? 1 : 0;
      }
    }
    return n;
  }

  /** The batch on a backend; the caller closes it. */
  public TokenBatch pack(Backend backend) {
    return TokenBatch.pack(backend, inputIds, labels);
  }
}
