package dev.plora.optim;

import dev.plora.tensor.Tensor;

/**
 * A trainable tensor as the optimizer sees it: its fp32 value (contiguous), its fp32 gradient
 * (same shape), and optionally a compute-dtype copy that the optimizer refreshes after each
 * step (the A and B views inside a LoRA layer's augmented weight).
 */
public record Parameter(String name, Tensor value, Tensor grad, Tensor computeCopy, Role role) {
  /** What a parameter is, for per-role settings such as LoRA+'s learning-rate ratio for B. */
  public enum Role {
    LORA_A,
    LORA_B,
    WEIGHT,
    BIAS
  }

  public Parameter {
    if (name == null || value == null || grad == null || role == null) {
      throw new IllegalArgumentException("parameter: name, value, grad and role must not be null");
    }
  }

  /** Bytes of the value and the gradient. */
  public long bytes() {
    return (value.elementCount() + grad.elementCount()) * 4L;
  }
}
