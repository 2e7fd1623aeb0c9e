package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.backend.RmsNorm;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * RMSNorm as a module ({@code input_layernorm}, {@code norm}, Qwen3's {@code q_norm}):
 * {@code y = w ⊙ x·rstd} per row, as Hugging Face computes it; the weight frozen or trainable.
 * It keeps each row's rstd ({@code rstd}, F32 [rows, 1]) for backward; x must stay as forward saw it.
 */
public final class RmsNormLayer extends Module {
  private final Backend backend;
  private final OwnedWeights owned;
  private final Tensor weight;
  private final float eps;
  private Tensor gradWeight;
  private Tensor savedX;

  /** A norm over a copy of {@code weight} [1, features]. */
  public RmsNormLayer(Tensor weight, float eps, boolean trainable) {
    if (weight == null || weight.rows() != 1) {
      throw new IllegalArgumentException("weight: expected [1, features], got " + (weight == null ? "null"
          : weight.shape()));
    }
    if (!(eps > 0) || !Float.isFinite(eps)) {
      throw new IllegalArgumentException("eps: expected a finite value > 0, got " + eps);
    }
    weight.requireOpen("weight");
    this.backend = weight.backend();
    this.owned = new OwnedWeights(backend);
    this.eps = eps;
    try {
      this.weight = owned.copy(weight);
      if (trainable) {
        gradWeight = owned.train("weight", this.weight, Parameter.Role.WEIGHT);
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  @Override
  public Backend backend() {
    return backend;
  }

  public int features() {
    return weight.cols();
  }

  public DType dtype() {
    return weight.dtype();
  }

  public Tensor weight() {
    return weight;
  }

  @Override
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    return List.of(ActivationSpec.recomputable("rstd", shape.rows(), 1, DType.F32));
  }

  /** {@code y ← norm(x)}; x and y [M, features] (y may be x only in evaluation: backward needs x). */
  public void forward(Tensor x, Tensor y) {
    requireOpen();
    if (x == null) {
      throw new IllegalArgumentException("x: must not be null");
    }
    usePlan(InputShape.ofRows(x.rows()));
    RmsNorm.forward(backend, x, weight, eps, y, activation("rstd"));
    savedX = x;
  }

  /** Backward of the last forward: {@code dx ← dL/dx} (dx may be dy); accumulates the weight's gradient. */
  public void backward(Tensor dy, Tensor dx) {
    requireOpen();
    if (savedX == null) {
      throw new IllegalStateException("RmsNormLayer: backward needs a forward pass first");
    }
    RmsNorm.backward(backend, savedX, weight, activation("rstd"), dy, dx, gradWeight);
  }

  @Override
  protected List<Parameter> ownParameters() {
    return owned.parameters();
  }

  @Override
  protected void release() {
    savedX = null;
    owned.close();
  }
}
