package dev.plora.model;

import dev.plora.backend.Attention;
import dev.plora.backend.Backend;
import dev.plora.backend.DecodeAttention;
import dev.plora.backend.Rope;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Causal grouped-query self-attention as Llama-family decoders compute it: q, k and v projected
 * from x ({@code q_proj}, {@code k_proj}, {@code v_proj}), Qwen3's per-head RMSNorm of q and k
 * ({@code q_norm}, {@code k_norm}) when given, rotary position embedding, attention over each
 * token's document up to itself, and the output projection ({@code o_proj}). The children carry
 * Hugging Face's names, so LoRA targets them by name.
 *
 * <p>Buffers: {@code q}, {@code k}, {@code v} after RoPE, with {@code q_raw}, {@code k_raw} before the
 * norms when there are norms; {@code attn} (o_proj's input) and {@code lse}; in backward
 * {@code d_attn}, {@code dq}, {@code dk}, {@code dv} and {@code dx_part} (k_proj's and v_proj's
 * shares of dx, added to q_proj's).
 */
public final class SelfAttention extends Module {
  public static final String Q = "q_proj", K = "k_proj", V = "v_proj", O = "o_proj", Q_NORM = "q_norm",
      K_NORM = "k_norm";
  private final Backend backend;
  private final int heads, kvHeads, headDim;
  private final boolean norms;
  private final float scale;
  private final Tensor invFreq;
  private Tensor positions, seqStart; // of the last forward pass

  /**
   * Takes ownership of the layers (and norms, both or neither); {@code invFreq} [1, headDim/2] F32
   * holds RoPE's inverse frequencies (copied).
   */
  public SelfAttention(Layer q, Layer k, Layer v, Layer o, RmsNormLayer qNorm, RmsNormLayer kNorm, int heads,
      int kvHeads, int headDim, Tensor invFreq) {
    if (q == null || k == null || v == null || o == null || invFreq == null) {
      throw new IllegalArgumentException("q, k, v, o and invFreq: must not be null");
    }
    if ((qNorm == null) != (kNorm == null)) {
      throw new IllegalArgumentException("qNorm and kNorm: give both or neither");
    }
    if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0 || headDim < 2 || headDim % 2 != 0
        || headDim > Attention.MAX_HEAD_DIM) {
      throw new IllegalArgumentException("heads " + heads + ", kvHeads " + kvHeads + ", headDim " + headDim
          + ": expected heads a multiple of kvHeads and an even headDim up to " + Attention.MAX_HEAD_DIM);
    }
    int hidden = q.inFeatures();
    if (q.outFeatures() != heads * headDim || k.outFeatures() != kvHeads * headDim
        || v.outFeatures() != kvHeads * headDim || k.inFeatures() != hidden || v.inFeatures() != hidden
        || o.inFeatures() != heads * headDim || o.outFeatures() != hidden) {
      throw new IllegalArgumentException("layers: expected q [" + heads * headDim + "," + hidden + "], k and v ["
          + kvHeads * headDim + "," + hidden + "], o [" + hidden + "," + heads * headDim + "], got q [" + q.outFeatures()
          + "," + q.inFeatures() + "], k [" + k.outFeatures() + "," + k.inFeatures() + "], v [" + v.outFeatures() + ","
          + v.inFeatures() + "], o [" + o.outFeatures() + "," + o.inFeatures() + "]");
    }
    if (qNorm != null && (qNorm.features() != headDim || kNorm.features() != headDim)) {
      throw new IllegalArgumentException("qNorm and kNorm: expected weights of headDim " + headDim);
    }
    if (invFreq.rows() != 1 || invFreq.cols() != headDim / 2 || invFreq.dtype() != DType.F32) {
      throw new IllegalArgumentException("invFreq: expected [1," + headDim / 2 + "] F32, got " + invFreq.shape() + " "
          + invFreq.dtype());
    }
    for (Layer l : List.of(k, v, o)) {
      if (l.dtype() != q.dtype() || l.backend() != q.backend()) {
        throw new IllegalArgumentException("layers: q, k, v and o must share a dtype and a backend");
      }
    }
    this.backend = q.backend();
    this.heads = heads;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.norms = qNorm != null;
    this.scale = (float) (1 / Math.sqrt(headDim));
    this.invFreq = backend.allocate(1, headDim / 2, DType.F32);
    backend.copy(invFreq, this.invFreq);
    register(Q, q);
    register(K, k);
    register(V, v);
    register(O, o);
    if (norms) {
      register(Q_NORM, qNorm);
      register(K_NORM, kNorm);
    }
  }

  private Layer layer(String name) {
    return (Layer) child(name);
  }

  @Override
  public Backend backend() {
    return backend;
  }

  public int hiddenSize() {
    return layer(Q).inFeatures();
  }

  public DType dtype() {
    return layer(Q).dtype();
  }

  @Override
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    int m = shape.rows(), qCols = heads * headDim, kvCols = kvHeads * headDim;
    DType dtype = dtype();
    List<ActivationSpec> out = new ArrayList<>(List.of(ActivationSpec.recomputable("q", m, qCols, dtype),
        ActivationSpec.recomputable("k", m, kvCols, dtype), ActivationSpec.recomputable("v", m, kvCols, dtype),
        ActivationSpec.recomputable("attn", m, layer(O).inputColumns(), dtype),
        ActivationSpec.recomputable("lse", m, heads, DType.F32), ActivationSpec.scratch("d_attn", m, qCols, dtype),
        ActivationSpec.scratch("dq", m, qCols, dtype), ActivationSpec.scratch("dk", m, kvCols, dtype),
        ActivationSpec.scratch("dv", m, kvCols, dtype), ActivationSpec.scratch("dx_part", m, hiddenSize(), dtype)));
    if (norms) {
      out.add(ActivationSpec.recomputable("q_raw", m, qCols, dtype));
      out.add(ActivationSpec.recomputable("k_raw", m, kvCols, dtype));
    }
    return out;
  }

  /**
   * {@code out ← attention(x)}; x and out [tokens, hidden]; positions and seqStart I32 [tokens, 1]
   * (each token's position, and the row its document starts at). x, positions and seqStart must
   * stay as they are until backward.
   */
  public void forward(Tensor x, Tensor positions, Tensor seqStart, Tensor out) {
    requireOpen();
    requireInput("x", x, hiddenSize(), dtype());
    usePlan(InputShape.ofRows(x.rows()));
    Tensor q = activation("q"), k = activation("k"), v = activation("v");
    project(x, positions, q, k, v);
    Tensor attn = activation("attn");
    Attention.forward(backend, q, k, v, seqStart, scale, heads, kvHeads, attn.colsView(0, heads * headDim),
        activation("lse"));
    layer(O).forward(attn, out);
    this.positions = positions;
    this.seqStart = seqStart;
  }

  /**
   * {@code out ← attention(x)} for new tokens of one sequence whose past keys and values are in a
   * cache: their keys and values (after RoPE) are written to rows {@code past ..} of the layer's
   * caches {@code kCache}, {@code vCache} [maxTokens, kvHeads·headDim], then each token attends to
   * rows {@code 0 ..} its own ({@link DecodeAttention}). Inference only: nothing is kept for
   * backward.
   */
  public void decode(Tensor x, Tensor positions, Tensor kCache, Tensor vCache, int past, Tensor out) {
    requireOpen();
    requireInput("x", x, hiddenSize(), dtype());
    int m = x.rows();
    usePlan(InputShape.ofRows(m));
    Tensor q = activation("q"), k = activation("k"), v = activation("v");
    project(x, positions, q, k, v);
    backend.copy(k, kCache.rowsView(past, m));
    backend.copy(v, vCache.rowsView(past, m));
    Tensor attn = activation("attn");
    DecodeAttention.forward(backend, q, kCache, vCache, past, scale, heads, kvHeads,
        attn.colsView(0, heads * headDim));
    layer(O).forward(attn, out);
    this.positions = null; // no backward of a decoding step
    this.seqStart = null;
  }

  /** q, k and v of x: the projections, Qwen3's norms when there are any, and RoPE on q and k. */
  private void project(Tensor x, Tensor positions, Tensor q, Tensor k, Tensor v) {
    if (norms) {
      Tensor qRaw = activation("q_raw"), kRaw = activation("k_raw");
      layer(Q).forward(x, qRaw);
      layer(K).forward(x, kRaw);
      ((RmsNormLayer) child(Q_NORM)).forward(perHead(qRaw, heads), perHead(q, heads));
      ((RmsNormLayer) child(K_NORM)).forward(perHead(kRaw, kvHeads), perHead(k, kvHeads));
    } else {
      layer(Q).forward(x, q);
      layer(K).forward(x, k);
    }
    layer(V).forward(x, v);
    Rope.forward(backend, q, heads, positions, invFreq);
    Rope.forward(backend, k, kvHeads, positions, invFreq);
  }

  /** Backward of the last forward: {@code dx ← dL/dx} (unless null); accumulates the layers' gradients. */
  public void backward(Tensor dout, Tensor dx) {
    requireOpen();
    if (positions == null) {
      throw new IllegalStateException("SelfAttention: backward needs a forward pass first");
    }
    Tensor dAttn = activation("d_attn"), dq = activation("dq"), dk = activation("dk"), dv = activation("dv");
    layer(O).backward(dout, dAttn);
    Tensor attn = activation("attn").colsView(0, heads * headDim);
    Attention.backward(backend, activation("q"), activation("k"), activation("v"), seqStart, scale, heads, kvHeads,
        attn, activation("lse"), dAttn, dq, dk, dv);
    Rope.backward(backend, dq, heads, positions, invFreq);
    Rope.backward(backend, dk, kvHeads, positions, invFreq);
    if (norms) { // in place: the gradients of the norms' inputs replace those of their outputs
      ((RmsNormLayer) child(Q_NORM)).backward(perHead(dq, heads), perHead(dq, heads));
      ((RmsNormLayer) child(K_NORM)).backward(perHead(dk, kvHeads), perHead(dk, kvHeads));
    }
    layer(Q).backward(dq, dx);
    layer(K).backwardAdding(dk, dx, activation("dx_part"));
    layer(V).backwardAdding(dv, dx, activation("dx_part"));
  }

  /** A contiguous [tokens, heads·headDim] buffer seen as [tokens·heads, headDim]: a row per head. */
  private Tensor perHead(Tensor t, int count) {
    return t.carve(0, t.rows() * count, headDim, t.dtype());
  }

  @Override
  protected void release() {
    positions = null;
    seqStart = null;
    invFreq.close();
  }
}
