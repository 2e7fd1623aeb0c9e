package dev.plora.tensor;

import dev.plora.backend.Backend;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One native allocation of a backend, shared by a tensor and its views. Created by backends;
 * released once, by the tensor that owns it.
 */
public abstract class TensorStorage {
  private final long address;
  private final long bytes;
  private final AtomicBoolean released = new AtomicBoolean();

  protected TensorStorage(long address, long bytes) {
    this.address = address;
    this.bytes = bytes;
  }

  /** The backend whose memory this is. */
  public abstract Backend backend();

  /** Frees the memory; called exactly once. */
  protected abstract void free(long address, long bytes);

  public final long address() {
    return address;
  }

  public final long bytes() {
    return bytes;
  }

  public final boolean isReleased() {
    return released.get();
  }

  final void release() {
    if (released.compareAndSet(false, true)) {
      free(address, bytes);
    }
  }
}
