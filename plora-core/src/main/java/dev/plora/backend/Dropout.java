package dev.plora.backend;

/**
 * Dropout on the LoRA path: each element is dropped with probability {@code p} and the kept ones
 * are scaled by 1/(1-p). The mask is never stored: it is drawn from the counter-based Philox
 * stream {@code (seed, stream)} by element position, so forward and backward, CPU and CUDA, all
 * see the same mask. Callers give each (step, layer) its own {@code stream}.
 */
public record Dropout(float p, long seed, long stream) {
  public static final Dropout NONE = new Dropout(0f, 0L, 0L);

  public Dropout {
    if (!(p >= 0f && p < 1f)) {
      throw new IllegalArgumentException("dropout p: expected 0 <= p < 1, got " + p);
    }
  }

  public boolean isActive() {
    return p > 0f;
  }
}
