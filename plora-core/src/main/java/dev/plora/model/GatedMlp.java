package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.backend.SwiGlu;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * The MLP of Llama-family decoders, {@code down_proj(silu(gate_proj(x)) ⊙ up_proj(x))}, with its
 * three linear children named as Hugging Face names them, so LoRA targets them by name.
 *
 * <p>Buffers: {@code gate} and {@code up} (the projections, replaced by their gradients in
 * backward), {@code h} (down_proj's input, with the columns down_proj works best with), and in
 * backward {@code dh} and {@code dx_up} (up_proj's share of dx, added to gate_proj's).
 */
public final class GatedMlp extends Module {
  public static final String GATE = "gate_proj", UP = "up_proj", DOWN = "down_proj";
  private final Backend backend;
  private int rows = -1; // of the last forward pass

  /** Takes ownership of the three layers: gate and up [intermediate, hidden], down [hidden, intermediate]. */
  public GatedMlp(Layer gate, Layer up, Layer down) {
    if (gate == null || up == null || down == null) {
      throw new IllegalArgumentException("gate, up and down: must not be null");
    }
    if (up.inFeatures() != gate.inFeatures() || up.outFeatures() != gate.outFeatures()
        || down.inFeatures() != gate.outFeatures() || down.outFeatures() != gate.inFeatures()) {
      throw new IllegalArgumentException("layers: expected gate and up [I,H] and down [H,I], got gate ["
          + gate.outFeatures() + "," + gate.inFeatures() + "], up [" + up.outFeatures() + "," + up.inFeatures()
          + "], down [" + down.outFeatures() + "," + down.inFeatures() + "]");
    }
    if (up.dtype() != gate.dtype() || down.dtype() != gate.dtype() || up.backend() != gate.backend()
        || down.backend() != gate.backend()) {
      throw new IllegalArgumentException("layers: gate, up and down must share a dtype and a backend");
    }
    this.backend = gate.backend();
    register(GATE, gate);
    register(UP, up);
    register(DOWN, down);
  }

  private Layer layer(String name) {
    return (Layer) child(name);
  }

  @Override
  public Backend backend() {
    return backend;
  }

  public int hiddenSize() {
    return layer(GATE).inFeatures();
  }

  public int intermediateSize() {
    return layer(GATE).outFeatures();
  }

  public DType dtype() {
    return layer(GATE).dtype();
  }

  @Override
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    int m = shape.rows(), i = intermediateSize();
    DType dtype = dtype();
    return List.of(ActivationSpec.recomputable("gate", m, i, dtype), ActivationSpec.recomputable("up", m, i, dtype),
        ActivationSpec.recomputable("h", m, layer(DOWN).inputColumns(), dtype),
        ActivationSpec.scratch("dh", m, i, dtype), ActivationSpec.scratch("dx_up", m, hiddenSize(), dtype));
  }

  /** {@code out ← mlp(x)}; x and out [M, hidden]; x must stay as it is until backward. */
  public void forward(Tensor x, Tensor out) {
    requireOpen();
    requireInput("x", x, hiddenSize(), dtype());
    usePlan(InputShape.ofRows(x.rows()));
    Tensor gate = activation("gate"), up = activation("up"), h = activation("h");
    layer(GATE).forward(x, gate);
    layer(UP).forward(x, up);
    SwiGlu.forward(backend, gate, up, h.colsView(0, intermediateSize()));
    layer(DOWN).forward(h, out);
    rows = x.rows();
  }

  /** Backward of the last forward: {@code dx ← dL/dx} (unless null); accumulates the layers' gradients. */
  public void backward(Tensor dout, Tensor dx) {
    requireOpen();
    if (rows < 0 || dout == null || dout.rows() != rows) {
      throw new IllegalArgumentException("dout: expected [" + rows + "," + hiddenSize() + "] for the last forward "
          + "pass, got " + (dout == null ? "null" : dout.shape()));
    }
    Tensor gate = activation("gate"), up = activation("up"), dh = activation("dh");
    layer(DOWN).backward(dout, dh);
    SwiGlu.backward(backend, gate, up, dh, gate, up); // gate and up become their gradients
    layer(GATE).backward(gate, dx);
    layer(UP).backwardAdding(up, dx, activation("dx_up"));
  }
}
