package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.tensor.Tensor;

/** An elementwise activation between layers, with its backward. */
public enum Activation {
  /** The exact GELU, {@code x·Φ(x)} (PyTorch's default {@code approximate='none'}). */
  GELU {
    @Override
    public void forward(Backend backend, Tensor x, Tensor y) {
      backend.gelu(x, y);
    }

    @Override
    public void backward(Backend backend, Tensor x, Tensor dy, Tensor dx) {
      backend.geluBackward(x, dy, dx);
    }
  },
  /** No activation: a stack of linear layers. */
  IDENTITY {
    @Override
    public void forward(Backend backend, Tensor x, Tensor y) {
      backend.copy(x, y);
    }

    @Override
    public void backward(Backend backend, Tensor x, Tensor dy, Tensor dx) {
      backend.copy(dy, dx);
    }
  };

  /** {@code y ← f(x)}, same shapes. */
  public abstract void forward(Backend backend, Tensor x, Tensor y);

  /** {@code dx ← f'(x)·dy}, for the x of the forward pass. */
  public abstract void backward(Backend backend, Tensor x, Tensor dy, Tensor dx);
}
