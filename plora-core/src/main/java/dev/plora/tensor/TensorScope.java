package dev.plora.tensor;

import dev.plora.backend.Backend;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Closes every tensor it allocated or was given, newest first, when it is closed:
 *
 * <pre>{@code
 * try (TensorScope scope = new TensorScope(backend)) {
 *   Tensor x = scope.allocate(m, k, DType.F32);
 *   ...
 * } // x freed here
 * }</pre>
 */
public final class TensorScope implements AutoCloseable {
  private final Backend backend;
  private final Deque<Tensor> tensors = new ArrayDeque<>();
  private boolean closed;

  public TensorScope(Backend backend) {
    if (backend == null) {
      throw new IllegalArgumentException("backend: must not be null");
    }
    this.backend = backend;
  }

  public Backend backend() {
    return backend;
  }

  public Tensor allocate(int rows, int cols, DType dtype) {
    return track(backend.allocate(rows, cols, dtype));
  }

  public Tensor allocate(int rows, int cols, int ld, DType dtype) {
    return track(backend.allocate(rows, cols, ld, dtype));
  }

  /** A new tensor holding {@code values} (row-major, rows*cols long). */
  public Tensor fromArray(float[] values, int rows, int cols, DType dtype) {
    return track(backend.fromArray(values, rows, cols, dtype));
  }

  /** A new I32 tensor holding {@code values} (row-major, rows*cols long). */
  public Tensor fromInts(int[] values, int rows, int cols) {
    return track(backend.fromInts(values, rows, cols));
  }

  /** Takes ownership of {@code tensor}: it is closed with this scope. */
  public synchronized Tensor track(Tensor tensor) {
    if (closed) {
      tensor.close();
      throw new IllegalStateException("scope is closed");
    }
    tensors.push(tensor);
    return tensor;
  }

  /** Tensors this scope will close. */
  public synchronized int size() {
    return tensors.size();
  }

  @Override
  public synchronized void close() {
    closed = true;
    while (!tensors.isEmpty()) {
      tensors.pop().close();
    }
  }
}
