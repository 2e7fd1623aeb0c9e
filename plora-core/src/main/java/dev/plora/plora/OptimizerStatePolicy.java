package dev.plora.plora;

/** What happens to the adapters' optimizer moments at an unload. */
public sealed interface OptimizerStatePolicy {
  /** Leave them. */
  record Keep() implements OptimizerStatePolicy {}

  /** Zero them. */
  record Reset() implements OptimizerStatePolicy {}

  /** ReLoRA: zero the fraction {@code ratio} of each moment tensor with the smallest magnitudes. */
  record Prune(double ratio) implements OptimizerStatePolicy {
    public Prune {
      if (!(ratio >= 0 && ratio <= 1)) {
        throw new IllegalArgumentException("prune ratio: expected 0 <= ratio <= 1, got " + ratio);
      }
    }
  }

  static OptimizerStatePolicy keep() {
    return new Keep();
  }

  static OptimizerStatePolicy reset() {
    return new Reset();
  }

  static OptimizerStatePolicy prune(double ratio) {
    return new Prune(ratio);
  }
}
