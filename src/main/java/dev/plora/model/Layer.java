package dev.plora.model;

import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * A linear layer of a model: forward keeps what backward needs; backward accumulates the
 * layer's gradients. Inputs and output gradients may carry extra scratch columns
 * ({@link #inputColumns()}, {@link #outputGradColumns()}) that the layer uses to save work.
 */
public interface Layer extends AutoCloseable {
  int inFeatures();

  int outFeatures();

  DType dtype();

  /** Columns of the input buffer the layer works best with (≥ inFeatures). */
  int inputColumns();

  /** Columns of the output-gradient buffer the layer works best with (≥ outFeatures). */
  int outputGradColumns();

  /** {@code y ← layer(x)}; x is [M, inFeatures] or [M, inputColumns], y is [M, outFeatures]. */
  void forward(Tensor x, Tensor y);

  /**
   * Backward of the last forward: accumulates gradients; {@code dx ← dL/dx} unless dx is null.
   * dy is [M, outFeatures] or [M, outputGradColumns].
   */
  void backward(Tensor dy, Tensor dx);

  /** The trainable parameters (none for a frozen layer). */
  List<Parameter> parameters();

  /** Training mode (dropout on) or evaluation mode. */
  Layer train(boolean training);

  @Override
  void close();
}
