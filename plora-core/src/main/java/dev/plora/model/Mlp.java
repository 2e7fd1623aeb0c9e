package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.lora.LoraLinear;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Linear layers with an activation between them (GELU unless chosen otherwise), as children
 * {@code layers.0}, {@code layers.1}, …. Its buffers come from an {@link ActivationPlan}, laid out
 * the way each layer likes them (LoRA layers get their r scratch columns), so a step makes no
 * copies beyond the model's input and output gradient, and no allocations after the first. With
 * {@link #recompute(boolean)} on, it keeps only its input and output and recomputes the layers'
 * activations in backward.
 *
 * <p>Buffers, for layer i of n: {@code x<i>} its input (the model's input for i = 0, kept),
 * {@code y<i>} its output before the activation (the model's output for i = n−1, kept),
 * {@code dy<i>} the gradient of y, with the layer's scratch columns, and {@code dx<i>} (i > 0) the
 * gradient of its input before the activation's backward.
 */
public final class Mlp extends Module {
  private final Backend backend;
  private final Activation activation;
  private final ModuleList<Layer> layers;
  private final String[] x, y, dy, dx; // the buffers' names, by layer
  private int rows = -1; // of the last forward pass

  /** GELU between {@code layers}; takes ownership of them. */
  public Mlp(List<? extends Layer> layers) {
    this(layers, Activation.GELU);
  }

  /** Takes ownership of {@code layers}; consecutive features and dtypes must match. */
  public Mlp(List<? extends Layer> layers, Activation activation) {
    if (layers == null || layers.isEmpty()) {
      throw new IllegalArgumentException("layers: expected at least one layer");
    }
    if (activation == null) {
      throw new IllegalArgumentException("activation: must not be null");
    }
    for (int i = 1; i < layers.size(); i++) {
      Layer prev = layers.get(i - 1), next = layers.get(i);
      if (prev.outFeatures() != next.inFeatures()) {
        throw new IllegalArgumentException("layers: layer " + (i - 1) + " has " + prev.outFeatures()
            + " outputs but layer " + i + " has " + next.inFeatures() + " inputs");
      }
      if (prev.dtype() != next.dtype()) {
        throw new IllegalArgumentException("layers: layer " + i + " has dtype " + next.dtype() + ", layer 0 "
            + prev.dtype());
      }
      if (next.backend() != layers.get(0).backend()) {
        throw new IllegalArgumentException("layers: layer " + i + " is on another backend than layer 0");
      }
    }
    this.backend = layers.get(0).backend();
    this.activation = activation;
    this.layers = register("layers", new ModuleList<>(Layer.class, layers));
    int n = layers.size();
    x = new String[n];
    y = new String[n];
    dy = new String[n];
    dx = new String[n];
    for (int i = 0; i < n; i++) {
      x[i] = "x" + i;
      y[i] = "y" + i;
      dy[i] = "dy" + i;
      dx[i] = "dx" + i;
    }
  }

  @Override
  public Backend backend() {
    return backend;
  }

  @Override
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    List<Layer> layers = layers();
    int m = shape.rows(), last = layers.size() - 1;
    DType dtype = dtype();
    List<ActivationSpec> out = new ArrayList<>();
    for (int i = 0; i <= last; i++) {
      Layer l = layers.get(i);
      out.add(i == 0 ? ActivationSpec.kept(x[i], m, l.inputColumns(), dtype)
          : ActivationSpec.recomputable(x[i], m, l.inputColumns(), dtype));
      out.add(i == last ? ActivationSpec.kept(y[i], m, l.outFeatures(), dtype)
          : ActivationSpec.recomputable(y[i], m, l.outFeatures(), dtype));
      out.add(ActivationSpec.scratch(dy[i], m, l.outputGradColumns(), dtype));
      if (i > 0) {
        out.add(ActivationSpec.scratch(dx[i], m, l.inFeatures(), dtype));
      }
    }
    return out;
  }

  /** Recomputing runs the layers' forward again from the kept input. */
  @Override
  protected boolean canRecompute() {
    return true;
  }

  @Override
  public Mlp recompute(boolean on) {
    super.recompute(on);
    return this;
  }

  /** The last layer produces the model's outputs. */
  @Override
  public String outputHead() {
    return "layers." + (layers.size() - 1);
  }

  public Activation activation() {
    return activation;
  }

  /** The layers as they are now (LoRA injection replaces some). */
  public List<Layer> layers() {
    return layers.list();
  }

  /** The LoRA layers, in order. */
  public List<LoraLinear> loraLayers() {
    return layers().stream().filter(LoraLinear.class::isInstance).map(LoraLinear.class::cast).toList();
  }

  public void zeroGrad() {
    for (Parameter p : parameters()) {
      p.grad().fill(0f);
    }
  }

  @Override
  public Mlp train(boolean training) {
    super.train(training);
    return this;
  }

  public int inFeatures() {
    return layers.get(0).inFeatures();
  }

  public int outFeatures() {
    return layers.get(layers.size() - 1).outFeatures();
  }

  public DType dtype() {
    return layers.get(0).dtype();
  }

  /** The model's output [M, outFeatures], valid until the next forward pass. */
  public Tensor forward(Tensor x) {
    requireOpen();
    requireInput("x", x, inFeatures(), dtype());
    usePlan(InputShape.ofRows(x.rows()));
    backend.copy(x, activation(this.x[0]).colsView(0, inFeatures()));
    forwardLayers();
    rows = x.rows();
    return activation(y[layers.size() - 1]);
  }

  /** The layers and activations from the input buffer x0 on. */
  private void forwardLayers() {
    List<Layer> layers = layers();
    for (int i = 0; i < layers.size(); i++) {
      layers.get(i).forward(activation(x[i]), activation(y[i]));
      if (i + 1 < layers.size()) {
        activation.forward(backend, activation(y[i]), activation(x[i + 1]).colsView(0, layers.get(i + 1).inFeatures()));
      }
    }
  }

  /** Backward of the last forward pass from dL/d(output) [M, outFeatures]; accumulates gradients. */
  public void backward(Tensor dout) {
    requireOpen();
    List<Layer> layers = layers();
    int last = layers.size() - 1;
    if (rows < 0 || dout == null || dout.rows() != rows || dout.cols() != outFeatures()) {
      throw new IllegalArgumentException("dout: expected [" + rows + "," + outFeatures() + "] for the last forward "
          + "pass, got " + (dout == null ? "null" : dout.shape()));
    }
    dout.requireOpen("dout");
    if (recomputes()) {
      replay(this::forwardLayers);
    }
    backend.copy(dout, activation(dy[last]).colsView(0, outFeatures()));
    for (int i = last; i >= 0; i--) {
      layers.get(i).backward(activation(dy[i]), i > 0 ? activation(dx[i]) : null);
      if (i > 0) {
        int features = layers.get(i - 1).outFeatures();
        activation.backward(backend, activation(y[i - 1]), activation(dx[i]), activation(dy[i - 1]).colsView(0,
            features));
      }
    }
  }
}
