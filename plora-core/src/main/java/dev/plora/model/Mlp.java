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
 * {@code layers.0}, {@code layers.1}, …. Activation buffers are kept per batch size and laid out
 * the way each layer likes them (LoRA layers get their r scratch columns), so a step makes no
 * copies beyond the model's input and output gradient.
 */
public final class Mlp extends Module {
  private final Backend backend;
  private final Activation activation;
  private final ModuleList<Layer> layers;
  private final List<Tensor> buffers = new ArrayList<>();
  private Tensor[] inputs;   // [M, inputColumns(i)]: layer i's input (activation of layer i-1)
  private Tensor[] preacts;  // [M, out(i)]: layer i's output before the activation
  private Tensor[] outGrads; // [M, outputGradColumns(i)]
  private Tensor[] inGrads;  // [M, in(i)] for i > 0: layer i's dx, before the activation's backward
  private int batch = -1;
  private int[] bufferColumns; // the layers' preferred columns when the buffers were made

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
    if (x == null || x.cols() != inFeatures() || x.dtype() != dtype()) {
      throw new IllegalArgumentException("x: expected [M," + inFeatures() + "] " + dtype() + ", got "
          + (x == null ? "null" : x.shape() + " " + x.dtype()));
    }
    List<Layer> layers = layers();
    buffersFor(x.rows(), layers);
    backend.copy(x, inputs[0].colsView(0, inFeatures()));
    for (int i = 0; i < layers.size(); i++) {
      layers.get(i).forward(inputs[i], preacts[i]);
      if (i + 1 < layers.size()) {
        activation.forward(backend, preacts[i], inputs[i + 1].colsView(0, layers.get(i + 1).inFeatures()));
      }
    }
    return preacts[layers.size() - 1];
  }

  /** Backward of the last forward pass from dL/d(output) [M, outFeatures]; accumulates gradients. */
  public void backward(Tensor dout) {
    requireOpen();
    List<Layer> layers = layers();
    int last = layers.size() - 1;
    if (batch < 0 || dout == null || dout.rows() != batch || dout.cols() != outFeatures()) {
      throw new IllegalArgumentException("dout: expected [" + batch + "," + outFeatures() + "] for the last forward "
          + "pass, got " + (dout == null ? "null" : dout.shape()));
    }
    backend.copy(dout, outGrads[last].colsView(0, outFeatures()));
    for (int i = last; i >= 0; i--) {
      layers.get(i).backward(outGrads[i], i > 0 ? inGrads[i] : null);
      if (i > 0) {
        int features = layers.get(i - 1).outFeatures();
        activation.backward(backend, preacts[i - 1], inGrads[i], outGrads[i - 1].colsView(0, features));
      }
    }
  }

  private void buffersFor(int m, List<Layer> layers) {
    int[] columns = layers.stream().flatMapToInt(l -> java.util.stream.IntStream.of(l.inputColumns(),
        l.outputGradColumns())).toArray();
    if (m == batch && java.util.Arrays.equals(columns, bufferColumns)) {
      return;
    }
    releaseBuffers();
    bufferColumns = columns;
    int n = layers.size();
    inputs = new Tensor[n];
    preacts = new Tensor[n];
    outGrads = new Tensor[n];
    inGrads = new Tensor[n];
    DType dtype = dtype();
    for (int i = 0; i < n; i++) {
      Layer l = layers.get(i);
      inputs[i] = buffer(m, l.inputColumns(), dtype);
      preacts[i] = buffer(m, l.outFeatures(), dtype);
      outGrads[i] = buffer(m, l.outputGradColumns(), dtype);
      if (i > 0) {
        inGrads[i] = buffer(m, l.inFeatures(), dtype);
      }
    }
    batch = m;
  }

  private Tensor buffer(int rows, int cols, DType dtype) {
    Tensor t = backend.allocate(rows, cols, dtype).fill(0f);
    buffers.add(t);
    return t;
  }

  private void releaseBuffers() {
    buffers.forEach(Tensor::close);
    buffers.clear();
    batch = -1;
  }

  @Override
  protected void release() {
    releaseBuffers();
  }
}
