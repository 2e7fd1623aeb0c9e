package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;

/**
 * A linear layer of a model, {@code [M, inFeatures] → [M, outFeatures]}: forward keeps what
 * backward needs; backward accumulates the layer's gradients. Inputs and output gradients may
 * carry extra scratch columns ({@link #inputColumns()}, {@link #outputGradColumns()}) that the
 * layer uses to save work.
 */
public abstract class Layer extends Module {
  public abstract Backend backend();

  public abstract int inFeatures();

  public abstract int outFeatures();

  public abstract DType dtype();

  /** Columns of the input buffer the layer works best with (≥ inFeatures). */
  public abstract int inputColumns();

  /** Columns of the output-gradient buffer the layer works best with (≥ outFeatures). */
  public abstract int outputGradColumns();

  /** {@code y ← layer(x)}; x is [M, inFeatures] or [M, inputColumns], y is [M, outFeatures]. */
  public abstract void forward(Tensor x, Tensor y);

  /**
   * Backward of the last forward: accumulates gradients; {@code dx ← dL/dx} unless dx is null.
   * dy is [M, outFeatures] or [M, outputGradColumns].
   */
  public abstract void backward(Tensor dy, Tensor dx);

  @Override
  public Layer train(boolean training) {
    super.train(training);
    return this;
  }
}
