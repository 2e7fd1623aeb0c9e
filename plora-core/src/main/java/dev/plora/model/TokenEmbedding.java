package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.backend.Embedding;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * The token embedding ({@code embed_tokens}): row {@code ids[t]} of the table for each token, the
 * table frozen or trainable (full fine-tuning adds each token's gradient to its row).
 */
public final class TokenEmbedding extends Module {
  private final Backend backend;
  private final OwnedWeights owned;
  private final Tensor table;
  private final Tensor gradTable; // null when frozen
  private Tensor savedIds;

  /** An embedding over a copy of {@code table} [vocab, hidden]. */
  public TokenEmbedding(Tensor table, boolean trainable) {
    if (table == null) {
      throw new IllegalArgumentException("table: must not be null");
    }
    table.requireOpen("table");
    this.backend = table.backend();
    this.owned = new OwnedWeights(backend);
    this.table = owned.adopt(table, "weight", trainable, Parameter.Role.WEIGHT);
    this.gradTable = owned.grad("weight");
  }

  @Override
  public Backend backend() {
    return backend;
  }

  public int vocabSize() {
    return table.rows();
  }

  public int hiddenSize() {
    return table.cols();
  }

  public DType dtype() {
    return table.dtype();
  }

  /** The table [vocab, hidden] (an LM head tied to the embedding reads it). */
  public Tensor table() {
    return table;
  }

  /** {@code out[t] ← table[ids[t]]}; ids I32 [tokens, 1], each in [0, vocab). */
  public void forward(Tensor ids, Tensor out) {
    requireOpen();
    Embedding.forward(backend, ids, table, out);
    savedIds = ids;
  }

  /** Adds the gradient of each token's row to the table's gradient (nothing when the table is frozen). */
  public void backward(Tensor dout) {
    requireOpen();
    if (savedIds == null) {
      throw new IllegalStateException("TokenEmbedding: backward needs a forward pass first");
    }
    if (gradTable != null) {
      Embedding.backward(backend, savedIds, dout, gradTable);
    }
  }

  @Override
  protected List<Parameter> ownParameters() {
    return owned.parameters();
  }

  @Override
  protected void release() {
    savedIds = null;
    owned.close();
  }
}
