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

  /**
   * {@link #backward}, adding dL/dx to {@code dx} instead of assigning it, through {@code scratch}
   * (of dx's shape): for inputs that several layers read (q, k and v; gate and up). With dx null,
   * only the layer's gradients accumulate.
   */
  public final void backwardAdding(Tensor dy, Tensor dx, Tensor scratch) {
    backward(dy, dx == null ? null : scratch);
    if (dx != null) {
      backend().axpby(1f, scratch, 1f, dx);
    }
  }

  /**
   * Refuses, before any native call, an operand the backend would refuse only after part of a
   * pass had run: null, closed, on another backend, of another shape ({@code rows} or {@code cols}
   * below 0: any) or dtype (the layer's, or F32 where {@code f32Allowed}), or overlapping
   * {@code weights}. A refused call must change nothing.
   */
  protected final void requireOperand(String argument, Tensor t, int rows, int cols, boolean f32Allowed,
      Tensor weights) {
    if (t == null) {
      throw new IllegalArgumentException(argument + ": must not be null");
    }
    t.requireOpen(argument);
    if (t.backend() != backend()) {
      throw new IllegalArgumentException(argument + ": tensor " + t + " belongs to backend " + t.backend().name()
          + ", not to this layer's " + backend().name() + " backend");
    }
    if ((rows >= 0 && t.rows() != rows) || (cols >= 0 && t.cols() != cols)) {
      throw new IllegalArgumentException(argument + ": has shape " + t.shape() + ", expected ["
          + (rows >= 0 ? rows : "M") + "," + (cols >= 0 ? cols : "…") + "] for " + this);
    }
    if (t.dtype() != dtype() && !(f32Allowed && t.dtype() == DType.F32)) {
      throw new IllegalArgumentException(argument + ": has dtype " + t.dtype() + ", expected the layer's " + dtype()
          + (f32Allowed ? " or F32" : ""));
    }
    requireApart(argument, t, "the layer's weights", weights);
  }

  /** Refuses {@code t} when it shares memory with {@code other}. */
  protected static void requireApart(String argument, Tensor t, String otherName, Tensor other) {
    if (t.overlaps(other)) {
      throw new IllegalArgumentException(argument + ": " + t + " overlaps " + otherName + " " + other.shape()
          + " in memory");
    }
  }

  @Override
  public Layer train(boolean training) {
    super.train(training);
    return this;
  }
}
