package dev.plora.model;

import dev.plora.backend.Backend;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * One decoder layer of the Llama family, pre-norm with two residual adds:
 * {@code h = x + self_attn(input_layernorm(x))}, {@code out = h + mlp(post_attention_layernorm(h))}.
 * The residual adds round once to the model dtype, as Hugging Face's do.
 *
 * <p>Buffers: {@code n1} and {@code n2} (the norms' outputs), {@code h} (the residual between the
 * halves); in backward {@code dn} (a norm's output gradient, both halves in turn) and {@code dh}.
 * With {@link #recompute(boolean)} on (activation checkpointing) the layer keeps nothing of its own
 * from forward to backward: backward runs the forward pass again from the input the caller kept.
 */
public final class DecoderLayer extends Module {
  public static final String INPUT_NORM = "input_layernorm", ATTENTION = "self_attn",
      POST_NORM = "post_attention_layernorm", MLP = "mlp";
  private final Backend backend;
  private Tensor savedX, savedPositions, savedSeqStart, savedOut; // of the last forward pass

  /** Takes ownership of its four parts. */
  public DecoderLayer(RmsNormLayer inputNorm, SelfAttention attention, RmsNormLayer postNorm, GatedMlp mlp) {
    if (inputNorm == null || attention == null || postNorm == null || mlp == null) {
      throw new IllegalArgumentException("inputNorm, attention, postNorm and mlp: must not be null");
    }
    int hidden = attention.hiddenSize();
    if (inputNorm.features() != hidden || postNorm.features() != hidden || mlp.hiddenSize() != hidden) {
      throw new IllegalArgumentException("parts: expected hidden size " + hidden + " throughout, got norms of "
          + inputNorm.features() + " and " + postNorm.features() + " and an mlp of " + mlp.hiddenSize());
    }
    this.backend = attention.backend();
    register(INPUT_NORM, inputNorm);
    register(ATTENTION, attention);
    register(POST_NORM, postNorm);
    register(MLP, mlp);
  }

  private RmsNormLayer norm(String name) {
    return (RmsNormLayer) child(name);
  }

  private SelfAttention attention() {
    return (SelfAttention) child(ATTENTION);
  }

  private GatedMlp mlp() {
    return (GatedMlp) child(MLP);
  }

  @Override
  public Backend backend() {
    return backend;
  }

  @Override
  public DecoderLayer recompute(boolean on) {
    super.recompute(on);
    return this;
  }

  @Override
  protected void release() {
    savedX = savedPositions = savedSeqStart = savedOut = null;
  }

  public int hiddenSize() {
    return attention().hiddenSize();
  }

  public DType dtype() {
    return attention().dtype();
  }

  @Override
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    int m = shape.rows(), hidden = hiddenSize();
    DType dtype = dtype();
    return List.of(ActivationSpec.recomputable("n1", m, hidden, dtype), ActivationSpec.recomputable("h", m, hidden,
        dtype), ActivationSpec.recomputable("n2", m, hidden, dtype), ActivationSpec.scratch("dn", m, hidden, dtype),
        ActivationSpec.scratch("dh", m, hidden, dtype));
  }

  /**
   * {@code out ← layer(x)}; x and out [tokens, hidden], positions and seqStart as
   * {@link SelfAttention#forward} takes them; x must stay as it is until backward.
   */
  public void forward(Tensor x, Tensor positions, Tensor seqStart, Tensor out) {
    requireOpen();
    requireInput("x", x, hiddenSize(), dtype());
    usePlan(InputShape.ofRows(x.rows()));
    pass(x, positions, seqStart, out);
    savedX = x;
    savedPositions = positions;
    savedSeqStart = seqStart;
    savedOut = out;
  }

  /**
   * {@code out ← layer(x)} for new tokens of one sequence, attention reading and extending the
   * layer's key/value caches ({@link SelfAttention#decode}). Inference only: nothing is kept for
   * backward.
   */
  public void decode(Tensor x, Tensor positions, Tensor kCache, Tensor vCache, int past, Tensor out) {
    requireOpen();
    requireInput("x", x, hiddenSize(), dtype());
    usePlan(InputShape.ofRows(x.rows()));
    Tensor n1 = activation("n1"), h = activation("h");
    norm(INPUT_NORM).forward(x, n1);
    attention().decode(n1, positions, kCache, vCache, past, h);
    residualMlp(x, h, out);
    savedX = null;
  }

  private void pass(Tensor x, Tensor positions, Tensor seqStart, Tensor out) {
    Tensor n1 = activation("n1"), h = activation("h");
    norm(INPUT_NORM).forward(x, n1);
    attention().forward(n1, positions, seqStart, h);
    residualMlp(x, h, out);
  }

  /** h ← x + h (the attention's output), then out ← h + mlp(norm(h)). */
  private void residualMlp(Tensor x, Tensor h, Tensor out) {
    Tensor n2 = activation("n2");
    backend.axpby(1f, x, 1f, h); // h = x + attention
    norm(POST_NORM).forward(h, n2);
    mlp().forward(n2, out);
    backend.axpby(1f, h, 1f, out); // out = h + mlp
  }

  /** Recomputing runs the layer again from the input its caller keeps. */
  @Override
  protected boolean canRecompute() {
    return true;
  }

  /**
   * Backward of the last forward: {@code dx ← dL/dx}; accumulates the parts' gradients. dx may be
   * dout, but neither may be the forward pass's out when the layer recomputes (it is written again).
   */
  public void backward(Tensor dout, Tensor dx) {
    requireOpen();
    if (savedX == null) {
      throw new IllegalStateException("DecoderLayer: backward needs a forward pass first");
    }
    if (recomputes()) {
      replay(() -> pass(savedX, savedPositions, savedSeqStart, savedOut));
    }
    Tensor dn = activation("dn"), dh = activation("dh");
    mlp().backward(dout, dn);
    norm(POST_NORM).backward(dn, dh);
    backend.axpby(1f, dout, 1f, dh); // the residual's share
    attention().backward(dh, dn);
    norm(INPUT_NORM).backward(dn, dx);
    backend.axpby(1f, dh, 1f, dx);
  }
}
