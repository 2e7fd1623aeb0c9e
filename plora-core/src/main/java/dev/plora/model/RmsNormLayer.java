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
 * A norm over each head of a token ({@code rowsPerToken} = heads, the heads of q or k seen as rows
 * {@code [tokens·heads, head_dim]}) sizes its buffers from the tokens the model's plan counts.
 */
public final class RmsNormLayer extends Module {
  private final Backend backend;
  private final OwnedWeights owned;
  private final Tensor weight;
  private final float eps;
  private final int rowsPerToken;
  private final Tensor gradWeight; // null when frozen
  private Tensor savedX;

  /** A norm over a copy of {@code weight} [1, features], a row per token. */
  public RmsNormLayer(Tensor weight, float eps, boolean trainable) {
    this(weight, eps, trainable, 1);
  }

  /** A norm over a copy of {@code weight} [1, features], {@code rowsPerToken} rows per token. */
  public RmsNormLayer(Tensor weight, float eps, boolean trainable, int rowsPerToken) {
    if (weight == null || weight.rows() != 1) {
      throw new IllegalArgumentException("weight: expected [1, features], got " + (weight == null ? "null"
          : weight.shape()));
    }
    if (!(eps > 0) || !Float.isFinite(eps)) {
      throw new IllegalArgumentException("eps: expected a finite value > 0, got " + eps);
    }
    if (rowsPerToken < 1) {
      throw new IllegalArgumentException("rowsPerToken: expected >= 1, got " + rowsPerToken);
    }
    weight.requireOpen("weight");
    this.rowsPerToken = rowsPerToken;
    this.backend = weight.backend();
    this.owned = new OwnedWeights(backend);
    this.eps = eps;
    this.weight = owned.adopt(weight, "weight", trainable, Parameter.Role.WEIGHT);
    this.gradWeight = owned.grad("weight");
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
    return List.of(ActivationSpec.recomputable("rstd", shape.rows() * rowsPerToken, 1, DType.F32));
  }

  /**
   * {@code y ← norm(x)}; x and y [tokens·rowsPerToken, features] (y may be x only in evaluation:
   * backward needs x).
   */
  public void forward(Tensor x, Tensor y) {
    requireOpen();
    if (x == null || x.rows() % rowsPerToken != 0) {
      throw new IllegalArgumentException("x: expected [tokens·" + rowsPerToken + ", " + features() + "], got "
          + (x == null ? "null" : x.shape()));
    }
    usePlan(InputShape.ofRows(x.rows() / rowsPerToken));
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
