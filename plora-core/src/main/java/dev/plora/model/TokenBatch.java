package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.backend.CrossEntropy;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * A batch of documents packed as one tall matrix of tokens, with what each token carries, as
 * I32 [tokens, 1] tensors on a backend: its id, its position in its document, the row its
 * document starts at, and the token it must predict (Hugging Face's labels shifted by one inside
 * the document; {@link CrossEntropy#IGNORE_INDEX} at each document's last token and wherever the
 * label is). Closing it frees the four tensors.
 */
public final class TokenBatch implements AutoCloseable {
  private final Tensor ids, positions, seqStart, targets;
  private final int longestDocument;
  private final long scored;

  private TokenBatch(Tensor ids, Tensor positions, Tensor seqStart, Tensor targets, int longestDocument,
      long scored) {
    this.ids = ids;
    this.positions = positions;
    this.seqStart = seqStart;
    this.targets = targets;
    this.longestDocument = longestDocument;
    this.scored = scored;
  }

  /**
   * Packs documents: {@code inputIds.get(d)} and {@code labels.get(d)} of one length each (labels
   * aligned with the ids, −100 where nothing is scored; null labels: the ids themselves, as for
   * plain language modelling).
   */
  public static TokenBatch pack(Backend backend, List<int[]> inputIds, List<int[]> labels) {
    if (backend == null || inputIds == null || inputIds.isEmpty()) {
      throw new IllegalArgumentException("backend and inputIds: expected a backend and at least one document");
    }
    if (labels != null && labels.size() != inputIds.size()) {
      throw new IllegalArgumentException("labels: " + labels.size() + " documents, inputIds has " + inputIds.size());
    }
    long total = 0;
    for (int d = 0; d < inputIds.size(); d++) {
      int[] doc = inputIds.get(d);
      if (doc == null || doc.length == 0) {
        throw new IllegalArgumentException("inputIds: document " + d + " is empty");
      }
      if (labels != null && (labels.get(d) == null || labels.get(d).length != doc.length)) {
        throw new IllegalArgumentException("labels: document " + d + " has " + (labels.get(d) == null ? "none"
            : labels.get(d).length) + " labels for " + doc.length + " tokens");
      }
      total += doc.length;
    }
    if (total > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("inputIds: " + total + " tokens are more than a batch holds");
    }
    int n = (int) total, row = 0, longest = 0;
    long scored = 0;
    int[] id = new int[n], pos = new int[n], start = new int[n], target = new int[n];
    for (int d = 0; d < inputIds.size(); d++) {
      int[] doc = inputIds.get(d), lab = labels == null ? doc : labels.get(d);
      longest = Math.max(longest, doc.length);
      for (int t = 0; t < doc.length; t++, row++) {
        id[row] = doc[t];
        pos[row] = t;
        start[row] = row - t;
        target[row] = t + 1 < doc.length ? lab[t + 1] : CrossEntropy.IGNORE_INDEX;
        scored += target[row] != CrossEntropy.IGNORE_INDEX ? 1 : 0;
      }
    }
    Tensor ids = null, positions = null, seqStart = null;
    try {
      ids = backend.fromInts(id, n, 1);
      positions = backend.fromInts(pos, n, 1);
      seqStart = backend.fromInts(start, n, 1);
      return new TokenBatch(ids, positions, seqStart, backend.fromInts(target, n, 1), longest, scored);
    } catch (RuntimeException e) {
      for (Tensor t : new Tensor[] {ids, positions, seqStart}) {
        if (t != null) {
          t.close();
        }
      }
      throw e;
    }
  }

  public int tokens() {
    return ids.rows();
  }

  public Tensor ids() {
    return ids;
  }

  public Tensor positions() {
    return positions;
  }

  public Tensor seqStart() {
    return seqStart;
  }

  public Tensor targets() {
    return targets;
  }

  /** Tokens of the longest document (a sliding attention window must cover it). */
  public int longestDocument() {
    return longestDocument;
  }

  /** Tokens whose target is scored. */
  public long scoredTokens() {
    return scored;
  }

  @Override
  public void close() {
    ids.close();
    positions.close();
    seqStart.close();
    targets.close();
  }
}
