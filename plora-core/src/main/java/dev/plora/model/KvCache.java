package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;

/**
 * The keys and values (after RoPE) of one sequence's past positions, per decoder layer, for
 * generation: two owned tensors {@code [maxTokens, kvHeads·headDim]} per layer on the model's
 * backend, and the number of positions they hold. A model step {@link #append appends} its new
 * tokens; {@link #clear} starts a new sequence. Closing frees the tensors.
 */
public final class KvCache implements AutoCloseable {
  private final Backend backend;
  private final DType dtype;
  private final int capacity, columns;
  private final Tensor[] keys, values;
  private int length;

  /** Caches of {@code layers} layers, each {@code [maxTokens, columns]} of {@code dtype}. */
  public KvCache(Backend backend, int layers, int maxTokens, int columns, DType dtype) {
    if (backend == null || dtype == null || !dtype.isFloat()) {
      throw new IllegalArgumentException("backend and a float dtype: expected, got dtype " + dtype);
    }
    if (layers < 1 || maxTokens < 1 || columns < 1) {
      throw new IllegalArgumentException("layers " + layers + ", maxTokens " + maxTokens + ", columns " + columns
          + ": expected each at least 1");
    }
    this.backend = backend;
    this.dtype = dtype;
    this.capacity = maxTokens;
    this.columns = columns;
    this.keys = new Tensor[layers];
    this.values = new Tensor[layers];
    try {
      for (int i = 0; i < layers; i++) {
        keys[i] = backend.allocate(maxTokens, columns, dtype);
        values[i] = backend.allocate(maxTokens, columns, dtype);
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  public Backend backend() {
    return backend;
  }

  public DType dtype() {
    return dtype;
  }

  public int layers() {
    return keys.length;
  }

  /** kvHeads·headDim: the columns of each layer's keys and values. */
  public int columns() {
    return columns;
  }

  /** The positions it holds: the next token's position. */
  public int length() {
    return length;
  }

  /** maxTokens: the positions it can hold. */
  public int capacity() {
    return capacity;
  }

  public int remaining() {
    return capacity - length;
  }

  /** Layer {@code layer}'s keys, all maxTokens rows (rows from {@link #length} on are unset). */
  public Tensor keys(int layer) {
    requireOpen();
    return keys[layer];
  }

  public Tensor values(int layer) {
    requireOpen();
    return values[layer];
  }

  /**
   * Makes room for {@code tokens} more positions and returns the first of them, the former
   * length; the caller then writes their keys and values in every layer. A full cache is an
   * {@link IllegalStateException} that says how far it got, and nothing changes.
   */
  public int append(int tokens) {
    requireOpen();
    if (tokens < 1) {
      throw new IllegalArgumentException("tokens: expected at least 1, got " + tokens);
    }
    if (tokens > remaining()) {
      throw new IllegalStateException("KV cache full: it holds " + length + " of maxTokens " + capacity
          + " positions, " + tokens + " more do not fit (a larger maxTokens, or a shorter prompt or maxNewTokens)");
    }
    int first = length;
    length += tokens;
    return first;
  }

  /** Forgets every position: the next {@link #append} starts a new sequence at position 0. */
  public void clear() {
    requireOpen();
    length = 0;
  }

  /** Drops the positions from {@code length} on (a step that failed halfway, say). */
  public void truncate(int length) {
    requireOpen();
    if (length < 0 || length > this.length) {
      throw new IllegalArgumentException("length: expected in [0, " + this.length + "], got " + length);
    }
    this.length = length;
  }

  public boolean isClosed() {
    return keys[0] == null || keys[0].isClosed();
  }

  private void requireOpen() {
    if (isClosed()) {
      throw new IllegalStateException("KV cache is closed");
    }
  }

  @Override
  public void close() {
    for (Tensor[] ts : new Tensor[][] {keys, values}) {
      for (Tensor t : ts) {
        if (t != null) {
          t.close();
        }
      }
    }
  }
}
