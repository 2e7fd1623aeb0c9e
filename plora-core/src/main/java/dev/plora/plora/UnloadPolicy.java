package dev.plora.plora;

/** What an unload does with a layer's adapter at the end of a stage. */
public sealed interface UnloadPolicy {
  /** {@code W ← W + s·B·A}, then A re-initialised from a fresh Philox stream and B = 0. */
  record Full() implements UnloadPolicy {}

  /**
   * Momentum unloading: {@code W ← W + m·s·B·A; A ← (1−m)·A; B ← (1−m)·B}. With
   * {@code preserveOutput}, A and B are scaled by √(1−m) instead, so the layer's function is
   * unchanged by the unload.
   */
  record Momentum(float m, boolean preserveOutput) implements UnloadPolicy {
    public Momentum {
      if (!(m > 0 && m <= 1)) {
        throw new IllegalArgumentException("momentum m: expected 0 < m <= 1, got " + m);
      }
    }

    /** The factor A and B are each scaled by. */
    public float adapterScale() {
      return preserveOutput ? (float) Math.sqrt(1.0 - m) : 1f - m;
    }
  }

  static UnloadPolicy full() {
    return new Full();
  }

  static UnloadPolicy momentum(float m) {
    return new Momentum(m, false);
  }

  static UnloadPolicy momentum(float m, boolean preserveOutput) {
    return new Momentum(m, preserveOutput);
  }
}
