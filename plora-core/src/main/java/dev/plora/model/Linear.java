package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * {@code y = x·Wᵀ + b}, frozen or fully trainable (for full fine-tuning: W and b get fp32
 * gradients, and fp32 masters when the layer's dtype is 16-bit).
 */
public final class Linear extends Layer {
  private final Backend backend;
  private final Tensor weight;
  private final Tensor bias;
  private final boolean trainable;
  private final OwnedWeights owned;
  private final Tensor gradW; // null when frozen
  private final Tensor gradBias; // null when frozen or without a bias
  private Tensor savedX;

  /** A layer over copies of {@code weight} [N,K] and {@code bias} [1,N] (may be null). */
  public Linear(Tensor weight, Tensor bias, boolean trainable) {
    if (weight == null) {
      throw new IllegalArgumentException("weight: must not be null");
    }
    weight.requireOpen("weight");
    this.backend = weight.backend();
    this.owned = new OwnedWeights(backend);
    this.trainable = trainable;
    int n = weight.rows();
    if (bias != null) {
      bias.requireOpen("bias");
      if (bias.rows() != 1 || bias.cols() != n) {
        throw new IllegalArgumentException("bias: has shape " + bias.shape() + ", expected [1," + n + "]");
      }
    }
    this.weight = owned.adopt(weight, "weight", trainable, Parameter.Role.WEIGHT);
    this.bias = bias == null ? null : owned.adopt(bias, "bias", trainable, Parameter.Role.BIAS); // frees all on failure
    this.gradW = owned.grad("weight");
    this.gradBias = owned.grad("bias");
  }

  @Override
  public Backend backend() {
    return backend;
  }

  public Tensor weight() {
    return weight;
  }

  public Tensor bias() {
    return bias;
  }

  @Override
  public int inFeatures() {
    return weight.cols();
  }

  @Override
  public int outFeatures() {
    return weight.rows();
  }

  @Override
  public DType dtype() {
    return weight.dtype();
  }

  @Override
  public int inputColumns() {
    return inFeatures();
  }

  @Override
  public int outputGradColumns() {
    return outFeatures();
  }

  /** A trainable bias needs {@code ones [M,1]}: its gradient is onesᵀ·dY, a GEMM. */
  @Override
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    return gradBias == null ? List.of() : List.of(ActivationSpec.scratch("ones", shape.rows(), 1, dtype()));
  }

  @Override
  public void forward(Tensor x, Tensor y) {
    requireOpen();
    requireOperand("x", x, -1, -1, false, weight);
    if (x.cols() < inFeatures()) {
      throw new IllegalArgumentException("x: has shape " + x.shape() + ", expected [M," + inFeatures()
          + "] (or more columns, of which the first " + inFeatures() + " are read) for weight " + weight.shape());
    }
    requireOperand("y", y, x.rows(), outFeatures(), true, weight);
    requireApart("y", y, "x", x);
    usePlan(InputShape.ofRows(x.rows()));
    Tensor xk = x.cols() == inFeatures() ? x : x.colsView(0, inFeatures());
    backend.gemm(false, xk, true, weight, 1f, 0f, y);
    if (bias != null) {
      backend.addBias(y, bias);
    }
    savedX = xk;
  }

  @Override
  public void backward(Tensor dy, Tensor dx) {
    requireOpen();
    if (savedX == null) {
      throw new IllegalStateException("Linear: backward needs a forward pass first");
    }
    savedX.requireOpen("the input x of the last forward pass");
    requireOperand("dy", dy, savedX.rows(), -1, false, weight);
    if (dy.cols() < outFeatures()) {
      throw new IllegalArgumentException("dy: has shape " + dy.shape() + ", expected [" + savedX.rows() + ","
          + outFeatures() + "] (or more columns) for the last forward pass");
    }
    if (dx != null) {
      requireOperand("dx", dx, savedX.rows(), inFeatures(), true, weight);
      requireApart("dx", dx, "dy", dy);
      requireApart("dx", dx, "the last forward pass's x", savedX);
    }
    Tensor dyn = dy.cols() == outFeatures() ? dy : dy.colsView(0, outFeatures());
    if (trainable) {
      backend.gemm(true, dyn, false, savedX, 1f, 1f, gradW);
      if (gradBias != null) {
        Tensor ones = activation("ones");
        ones.fill(1f);
        backend.gemm(true, ones, false, dyn, 1f, 1f, gradBias);
      }
    }
    if (dx != null) {
      backend.gemm(false, dyn, false, weight, 1f, 0f, dx);
    }
  }

  @Override
  protected List<Parameter> ownParameters() {
    return owned.parameters();
  }

  @Override
  public Linear train(boolean training) {
    super.train(training);
    return this;
  }

  @Override
  public String toString() {
    return "Linear{weight " + weight.shape() + " " + weight.dtype() + (trainable ? ", trainable" : ", frozen") + "}";
  }

  @Override
  protected void release() {
    savedX = null;
    owned.close();
  }
}
