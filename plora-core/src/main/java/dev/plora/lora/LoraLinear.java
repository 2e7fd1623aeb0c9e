package dev.plora.lora;

import dev.plora.backend.Backend;
import dev.plora.backend.Dropout;
import dev.plora.model.ActivationSpec;
import dev.plora.model.InputShape;
import dev.plora.model.Layer;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * A frozen linear layer {@code y = x·Wᵀ + b} with a LoRA adapter: {@code y = x·Wᵀ + b +
 * s·x̃·Aᵀ·Bᵀ} (PEFT semantics; x̃ is x with dropout on the LoRA path only).
 *
 * <p>Storage is the augmented weight {@code Waug [N+r, K+r] = [[W, B], [A, 0]]}: W, A and B are
 * views of it. Inputs may come augmented too: an x of shape [M, K+r] (see {@link
 * #allocateInput}) whose last r columns are scratch lets the forward pass be one shrink kernel
 * plus ONE GEMM; a dY of shape [M, N+r] does the same for backward. Plain [M,K] / [M,N] inputs
 * work as well, with a second rank-r GEMM (never a materialised [N,K] delta).
 *
 * <p>Gradients {@link #gradA()} and {@link #gradB()} are fp32 and accumulate over backward calls
 * until {@link #zeroGrad()}. The layer remembers the input of the last forward pass for
 * backward: do not change or close it in between.
 */
public final class LoraLinear extends Layer {
  private final Backend backend;
  private final LoraConfig config;
  private final int layer;
  private final int n;
  private final int k;
  private final int r;
  private final DType dtype;
  private final float scaling;
  private final Tensor waug;
  private final Tensor weight;
  private final Tensor loraA;
  private final Tensor loraB;
  private final Tensor bias;
  private final LoraAdapter adapter;

  private boolean merged;

  // State of the last forward pass, for backward.
  private Tensor savedX;
  private Tensor savedSs;
  private Dropout savedDropout;

  private LoraLinear(Tensor w, Tensor b, LoraConfig config, int layer) {
    this.backend = w.backend();
    this.config = config;
    this.layer = layer;
    this.n = w.rows();
    this.k = w.cols();
    this.r = config.r();
    this.dtype = w.dtype();
    this.scaling = config.scaling();
    Tensor aug = backend.allocate(n + r, k + r, dtype);
    Tensor biasCopy = null;
    LoraAdapter made = null;
    try {
      weight = aug.view(0, 0, n, k);
      loraA = aug.view(n, 0, r, k);
      loraB = aug.view(0, k, n, r);
      backend.copy(w, weight);
      aug.view(n, k, r, r).fill(0f);
      if (b != null) {
        biasCopy = backend.allocate(1, n, b.dtype());
        backend.copy(b, biasCopy);
      }
      made = new LoraAdapter(config, layer, weight, loraA, loraB);
    } catch (RuntimeException e) {
      for (Tensor t : new Tensor[] {aug, biasCopy}) {
        if (t != null) {
          t.close();
        }
      }
      throw e;
    }
    waug = aug;
    bias = biasCopy;
    adapter = made;
  }

  /**
   * A LoRA layer over a copy of {@code weight} [N,K] (frozen) and of {@code bias} [1,N] (frozen,
   * may be null), on the weight's backend and in its dtype. {@code layer} numbers the layer in
   * its model: it keys the layer's dropout masks and inits.
   */
  public static LoraLinear create(Tensor weight, Tensor bias, LoraConfig config, int layer) {
    if (weight == null) {
      throw new IllegalArgumentException("weight: must not be null");
    }
    if (config == null) {
      throw new IllegalArgumentException("config: must not be null");
    }
    weight.requireOpen("weight");
    if (bias != null) {
      bias.requireOpen("bias");
      if (bias.backend() != weight.backend()) {
        throw new IllegalArgumentException("bias: on backend " + bias.backend().name() + ", weight on "
            + weight.backend().name());
      }
      if (bias.rows() != 1 || bias.cols() != weight.rows()) {
        throw new IllegalArgumentException("bias: has shape " + bias.shape() + ", expected [1," + weight.rows()
            + "] for weight " + weight.shape());
      }
    }
    if (layer < 0) {
      throw new IllegalArgumentException("layer: expected >= 0, got " + layer);
    }
    return new LoraLinear(weight, bias, config, layer);
  }

  // ---------------------------------------------------------------- shapes and parameters

  @Override
  public Backend backend() {
    return backend;
  }

  public LoraConfig config() {
    return config;
  }

  public int layer() {
    return layer;
  }

  /** Input features K. */
  @Override
  public int inFeatures() {
    return k;
  }

  /** Output features N. */
  @Override
  public int outFeatures() {
    return n;
  }

  public int r() {
    return r;
  }

  @Override
  public DType dtype() {
    return dtype;
  }

  /** K + r: an input with r scratch columns makes the forward pass one GEMM. */
  @Override
  public int inputColumns() {
    return k + r;
  }

  /** N + r: an output gradient with r scratch columns makes dX one GEMM (without dropout). */
  @Override
  public int outputGradColumns() {
    return n + r;
  }

  public float scaling() {
    return scaling;
  }

  /** The frozen weight W [N,K] (a view of the augmented buffer). */
  public Tensor weight() {
    requireOpen();
    return weight;
  }

  /** The frozen bias [1,N], or null. */
  public Tensor bias() {
    requireOpen();
    return bias;
  }

  /** The adapter's state: A, B, masters, gradients, random-stream counters, unloads. */
  public LoraAdapter adapter() {
    requireOpen();
    return adapter;
  }

  /** A and B as optimizer parameters: fp32 masters, fp32 gradients, compute copies in Waug. */
  @Override
  protected List<Parameter> ownParameters() {
    return adapter.parameters();
  }

  /** Training mode applies dropout and advances the step that keys the masks; eval mode does neither. */
  @Override
  public LoraLinear train(boolean training) {
    super.train(training);
    return this;
  }

  public boolean isMerged() {
    return merged;
  }

  // ---------------------------------------------------------------- activations

  /**
   * Rank-r buffers for inputs without spare columns: {@code ss} (s·S, read by backward) and
   * {@code ds} (dS, within backward).
   */
  @Override
  protected List<ActivationSpec> ownActivations(InputShape shape) {
    return List.of(ActivationSpec.recomputable("ss", shape.rows(), r, dtype),
        ActivationSpec.scratch("ds", shape.rows(), r, dtype));
  }

  /** A new input buffer [M, K+r]: write x into its first K columns ({@code colsView(0, K)}). */
  public Tensor allocateInput(int m) {
    requireOpen();
    return backend.allocate(m, k + r, dtype);
  }

  /** A new output-gradient buffer [M, N+r]: write dY into its first N columns. */
  public Tensor allocateOutputGrad(int m) {
    requireOpen();
    return backend.allocate(m, n + r, dtype);
  }

  // ---------------------------------------------------------------- forward / backward

  /** A new y [M,N] in the layer's dtype; see {@link #forward(Tensor, Tensor)}. */
  public Tensor forward(Tensor x) {
    requireInput(x);
    Tensor y = backend.allocate(x.rows(), n, dtype);
    try {
      forward(x, y);
      return y;
    } catch (RuntimeException e) {
      y.close();
      throw e;
    }
  }

  /**
   * {@code y ← x·Wᵀ + b + s·x̃·Aᵀ·Bᵀ}. x is [M,K], or [M,K+r] with r scratch columns (augmented);
   * y is [M,N] in the layer's dtype or F32. After {@link #merge()} the LoRA path is part of W.
   */
  @Override
  public void forward(Tensor x, Tensor y) {
    requireInput(x);
    requireOperand("y", y, x.rows(), n, true, waug);
    requireApart("y", y, "x", x);
    boolean augmented = x.cols() == k + r;
    Tensor xk = augmented ? x.colsView(0, k) : x;
    if (merged) {
      backend.gemm(false, xk, true, weight, 1f, 0f, y);
      addBias(y);
      savedX = null;
      return;
    }
    usePlan(InputShape.ofRows(x.rows()));
    Dropout dropout = isReplaying() && savedDropout != null ? savedDropout // recomputing: the same mask
        : isTraining() && config.dropout() > 0
        ? new Dropout(config.dropout(), config.seed(), RngStreams.dropout(adapter.nextStep(), layer))
        : Dropout.NONE;
    Tensor ss = augmented ? x.colsView(k, r) : activation("ss");
    backend.shrink(xk, loraA, scaling, dropout, ss);
    if (augmented) {
      backend.gemm(false, x, true, waug.rowsView(0, n), 1f, 0f, y); // x·Wᵀ + (s·S)·Bᵀ in one GEMM
    } else {
      backend.gemm(false, xk, true, weight, 1f, 0f, y);
      backend.gemm(false, ss, true, loraB, 1f, 1f, y);
    }
    addBias(y);
    savedX = xk;
    savedSs = ss;
    savedDropout = dropout;
  }

  /** A new dX [M,K] in the layer's dtype; see {@link #backward(Tensor, Tensor)}. */
  public Tensor backward(Tensor dy) {
    requireOpen();
    if (savedX == null) {
      throw new IllegalStateException(backwardWithoutForward());
    }
    Tensor dx = backend.allocate(savedX.rows(), k, dtype);
    try {
      backward(dy, dx);
      return dx;
    } catch (RuntimeException e) {
      dx.close();
      throw e;
    }
  }

  /**
   * Backward of the last forward pass: accumulates {@link #gradA()} and {@link #gradB()} and
   * writes {@code dx ← dL/dx} unless dx is null (the first layer of a model needs none). dy is
   * [M,N], or [M,N+r] with r scratch columns (augmented: dX is then one GEMM when there is no
   * dropout); dx is [M,K] in the layer's dtype.
   */
  @Override
  public void backward(Tensor dy, Tensor dx) {
    requireOpen();
    if (merged) {
      throw new IllegalStateException("layer " + layer + " is merged: unmerge() before training it");
    }
    if (savedX == null) {
      throw new IllegalStateException(backwardWithoutForward());
    }
    savedX.requireOpen("the input x of the last forward pass");
    if (dy == null) {
      throw new IllegalArgumentException("dy: must not be null");
    }
    int m = savedX.rows();
    if (dy.rows() != m || (dy.cols() != n && dy.cols() != n + r)) {
      throw new IllegalArgumentException("dy: has shape " + dy.shape() + ", expected [" + m + "," + n + "] or ["
          + m + "," + (n + r) + "] (augmented) for the last forward pass's x [" + m + "," + k + "]");
    }
    requireOperand("dy", dy, m, dy.cols(), false, waug);
    if (dx != null) {
      requireOperand("dx", dx, m, k, false, waug);
      requireApart("dx", dx, "dy", dy);
      requireApart("dx", dx, "the last forward pass's x", savedX);
    }
    boolean augmented = dy.cols() == n + r;
    Tensor dyn = augmented ? dy.colsView(0, n) : dy;
    Tensor ds = augmented ? dy.colsView(n, r) : activation("ds");
    backend.dyPass(dyn, loraB, savedSs, scaling, ds, adapter.gradB());
    if (dx == null) {
      backend.daDx(savedX, ds, loraA, savedDropout, adapter.gradA(), null);
    } else if (augmented && !savedDropout.isActive()) {
      backend.gemm(false, dy, false, waug.colsView(0, k), 1f, 0f, dx); // dY·W + dS·A in one GEMM
      backend.daDx(savedX, ds, loraA, savedDropout, adapter.gradA(), null);
    } else {
      backend.gemm(false, dyn, false, weight, 1f, 0f, dx);
      backend.daDx(savedX, ds, loraA, savedDropout, adapter.gradA(), dx);
    }
  }

  // ---------------------------------------------------------------- merging

  /**
   * A new fp32 tensor [N,K] holding the weight this layer applies, {@code W + s·B·A} (just W when
   * merged), without changing the layer.
   */
  public Tensor effectiveWeight() {
    requireOpen();
    Tensor out = backend.allocate(n, k, DType.F32);
    try {
      backend.copy(weight, out);
      if (!merged) {
        backend.gemm(false, loraB, false, loraA, scaling, 1f, out);
      }
      return out;
    } catch (RuntimeException e) {
      out.close();
      throw e;
    }
  }

  /** {@code W ← W + s·B·A}; the forward pass then skips the LoRA path until {@link #unmerge()}. */
  public void merge() {
    merge(false);
  }

  /**
   * Merges the adapter into W. With {@code safe}, the merged weight is computed aside first and
   * the merge is refused with an {@link ArithmeticException}, leaving W bit-identical, when it
   * would hold a NaN or an infinity (in the layer's dtype).
   */
  public void merge(boolean safe) {
    requireOpen();
    if (merged) {
      throw new IllegalStateException("layer " + layer + " is already merged");
    }
    if (!safe) {
      backend.gemm(false, loraB, false, loraA, scaling, 1f, weight);
    } else {
      try (Tensor candidate = backend.allocate(n, k, dtype)) {
        backend.copy(weight, candidate);
        backend.gemm(false, loraB, false, loraA, scaling, 1f, candidate);
        long bad = backend.countNonFinite(candidate);
        if (bad > 0) {
          throw new ArithmeticException("merge refused: the merged weight of layer " + layer + " would hold " + bad
              + " non-finite values (of " + (long) n * k + "); W is unchanged");
        }
        backend.copy(candidate, weight);
      }
    }
    merged = true;
    adapter.setMerged(true);
    savedX = null;
  }

  /** {@code W ← W − s·B·A}, undoing {@link #merge()}. */
  public void unmerge() {
    requireOpen();
    if (!merged) {
      throw new IllegalStateException("layer " + layer + " is not merged");
    }
    backend.gemm(false, loraB, false, loraA, -scaling, 1f, weight);
    merged = false;
    adapter.setMerged(false);
  }

  @Override
  protected void release() {
    savedX = null;
    adapter.close();
    for (Tensor t : new Tensor[] {waug, bias}) {
      if (t != null) {
        t.close();
      }
    }
  }

  @Override
  public String toString() {
    return "LoraLinear{layer=" + layer + ", in=" + k + ", out=" + n + ", r=" + r + ", scaling=" + scaling + ", "
        + dtype + " on " + backend.name() + (merged ? ", merged" : "") + "}";
  }

  // ---------------------------------------------------------------- internals

  private void requireInput(Tensor x) {
    requireOpen();
    if (x == null) {
      throw new IllegalArgumentException("x: must not be null");
    }
    x.requireOpen("x");
    if (x.cols() != k && x.cols() != k + r) {
      throw new IllegalArgumentException("x: has shape " + x.shape() + ", expected [M," + k + "] or [M," + (k + r)
          + "] (augmented) for layer " + layer + " with weight [" + n + "," + k + "] and r=" + r);
    }
    if (x.dtype() != dtype) {
      throw new IllegalArgumentException("x: has dtype " + x.dtype() + ", expected the layer's " + dtype);
    }
    requireOperand("x", x, x.rows(), x.cols(), false, waug);
  }

  private void addBias(Tensor y) {
    if (bias != null) {
      backend.addBias(y, bias);
    }
  }

  private String backwardWithoutForward() {
    return "layer " + layer + ": backward needs a forward pass first (in training, not merged)";
  }
}
