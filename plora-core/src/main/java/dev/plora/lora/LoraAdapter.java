package dev.plora.lora;

import dev.plora.backend.Backend;
import dev.plora.backend.Rounding;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.List;

/**
 * The state of one LoRA adapter, apart from the math of the layer it sits in ({@link LoraLinear}):
 * A [r,K] and B [N,r] in the compute dtype (views of the layer's augmented weight), their fp32
 * masters and fp32 gradients, the counters that key its random streams, and what changes them —
 * re-initialisation and PLoRA's unloads into the frozen weight W.
 *
 * <p>The {@code index} numbers the adapter in its model: with the config's seed and the counters it
 * keys the adapter's dropout masks, inits and stochastic rounding (see {@link RngStreams}).
 */
public final class LoraAdapter {
  private final Backend backend;
  private final LoraConfig config;
  private final int index;
  private final int n;
  private final int k;
  private final int r;
  private final float scaling;
  private final Tensor weight;
  private final Tensor loraA;
  private final Tensor loraB;
  private final Tensor masterA; // fp32 values the optimizer updates; loraA/loraB are their copies
  private final Tensor masterB;
  private final Tensor gradA;
  private final Tensor gradB;
  private boolean merged;
  private boolean closed;
  private long step;
  private long generation;
  private long unloads;

  /**
   * Over views {@code weight} [N,K], {@code loraA} [r,K] and {@code loraB} [N,r] of the layer's
   * memory; allocates the masters and gradients and initialises A (B = 0).
   */
  LoraAdapter(LoraConfig config, int index, Tensor weight, Tensor loraA, Tensor loraB) {
    this.backend = weight.backend();
    this.config = config;
    this.index = index;
    this.n = weight.rows();
    this.k = weight.cols();
    this.r = config.r();
    this.scaling = config.scaling();
    this.weight = weight;
    this.loraA = loraA;
    this.loraB = loraB;
    Tensor ga = null;
    Tensor gb = null;
    Tensor ma = null;
    Tensor mb = null;
    try {
      ga = backend.allocate(r, k, DType.F32).fill(0f);
      gb = backend.allocate(n, r, DType.F32).fill(0f);
      ma = backend.allocate(r, k, DType.F32);
      mb = backend.allocate(n, r, DType.F32);
    } catch (RuntimeException e) {
      for (Tensor t : new Tensor[] {ga, gb, ma, mb}) {
        if (t != null) {
          t.close();
        }
      }
      throw e;
    }
    gradA = ga;
    gradB = gb;
    masterA = ma;
    masterB = mb;
    reset();
  }

  public LoraConfig config() {
    return config;
  }

  /** The adapter's number in its model, which keys its random streams. */
  public int index() {
    return index;
  }

  public int r() {
    return r;
  }

  /** The factor s of the update s·B·A. */
  public float scaling() {
    return scaling;
  }

  /** The compute dtype of A, B and W. */
  public DType dtype() {
    return weight.dtype();
  }

  /** The frozen weight W [N,K] that unloads move the adapter into. */
  public Tensor weight() {
    requireOpen();
    return weight;
  }

  /** A [r,K] (a view of the layer's augmented buffer, in the compute dtype). */
  public Tensor loraA() {
    requireOpen();
    return loraA;
  }

  /** B [N,r] (a view of the layer's augmented buffer, in the compute dtype). */
  public Tensor loraB() {
    requireOpen();
    return loraB;
  }

  /** The fp32 A [r,K] that the optimizer updates; {@link #loraA()} is its compute-dtype copy. */
  public Tensor masterA() {
    requireOpen();
    return masterA;
  }

  /** The fp32 B [N,r] that the optimizer updates; {@link #loraB()} is its compute-dtype copy. */
  public Tensor masterB() {
    requireOpen();
    return masterB;
  }

  /** Copies the fp32 masters into the compute-dtype A and B used by forward and backward. */
  public void sync() {
    requireOpen();
    backend.copy(masterA, loraA);
    backend.copy(masterB, loraB);
  }

  /** A and B as optimizer parameters: fp32 masters, fp32 gradients, compute copies. */
  public List<Parameter> parameters() {
    requireOpen();
    return List.of(new Parameter("layer" + index + ".lora_A", masterA, gradA, loraA, Parameter.Role.LORA_A),
        new Parameter("layer" + index + ".lora_B", masterB, gradB, loraB, Parameter.Role.LORA_B));
  }

  /** Bytes of trainable state: fp32 A, B and their gradients. */
  public long trainableBytes() {
    return 4L * 2 * ((long) r * k + (long) n * r);
  }

  /** dL/dA [r,K], fp32, accumulated. */
  public Tensor gradA() {
    requireOpen();
    return gradA;
  }

  /** dL/dB [N,r], fp32, accumulated. */
  public Tensor gradB() {
    requireOpen();
    return gradB;
  }

  public void zeroGrad() {
    requireOpen();
    gradA.fill(0f);
    gradB.fill(0f);
  }

  /** Forward passes made in training mode with dropout (keys the dropout masks). */
  public long step() {
    return step;
  }

  /** Sets the step counter, e.g. when resuming a run. */
  public void setStep(long step) {
    if (step < 0) {
      throw new IllegalArgumentException("step: expected >= 0, got " + step);
    }
    this.step = step;
  }

  /** The next dropout step: advances the counter and returns it. */
  long nextStep() {
    return ++step;
  }

  /** Re-initialises A (from a fresh Philox stream) and sets B to zero. */
  public void reset() {
    requireOpen();
    long stream = RngStreams.init(generation++, index);
    if (config.init() == LoraConfig.Init.KAIMING_UNIFORM) {
      float bound = (float) (1.0 / Math.sqrt(k));
      backend.fillUniform(masterA, -bound, bound, config.seed(), stream);
    } else {
      backend.fillNormal(masterA, 0f, 1f / r, config.seed(), stream);
    }
    masterB.fill(0f);
    sync();
  }

  /**
   * FULL unload: {@code W ← W + s·B·A} from the fp32 masters (rounded into W as asked), then a
   * fresh A and B = 0 — the layer's output is unchanged, the adapter starts over.
   */
  public void unloadFull(Rounding rounding) {
    requireUnloadable();
    backend.merge(weight, masterB, masterA, scaling, rounding, config.seed(), RngStreams.rounding(unloads++, index),
        1f, 1f);
    reset();
  }

  /**
   * Momentum unload: {@code W ← W + m·s·B·A}, then A and B each scaled by {@code adapterScale}
   * (1−m for the published rule, √(1−m) to keep the output), in one native call.
   */
  public void unloadMomentum(float m, float adapterScale, Rounding rounding) {
    requireUnloadable();
    if (!(m > 0 && m <= 1)) {
      throw new IllegalArgumentException("momentum m: expected 0 < m <= 1, got " + m);
    }
    backend.merge(weight, masterB, masterA, m * scaling, rounding, config.seed(),
        RngStreams.rounding(unloads++, index), adapterScale, adapterScale);
    sync();
  }

  /** Unloads done (keys the stochastic-rounding streams). */
  public long unloads() {
    return unloads;
  }

  /** Initialisations so far (keys the init streams). */
  public long generation() {
    return generation;
  }

  /** Restores the counters that key the random streams, e.g. from a checkpoint. */
  public void restoreCounters(long step, long generation, long unloads) {
    if (step < 0 || generation < 0 || unloads < 0) {
      throw new IllegalArgumentException("counters must be >= 0, got step " + step + ", generation " + generation
          + ", unloads " + unloads);
    }
    this.step = step;
    this.generation = generation;
    this.unloads = unloads;
  }

  /** A new fp32 tensor [N,K] holding s·B·A, the update this adapter applies to W. */
  public Tensor deltaWeight() {
    requireOpen();
    Tensor delta = backend.allocate(n, k, DType.F32);
    try {
      backend.gemm(false, loraB, false, loraA, scaling, 0f, delta);
      return delta;
    } catch (RuntimeException e) {
      delta.close();
      throw e;
    }
  }

  /** Set by the layer: a merged adapter is part of W and must not be unloaded again. */
  void setMerged(boolean merged) {
    this.merged = merged;
  }

  /** Frees the masters and gradients (the views belong to the layer). */
  void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (Tensor t : new Tensor[] {gradA, gradB, masterA, masterB}) {
      t.close();
    }
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("adapter " + index + " is closed");
    }
  }

  private void requireUnloadable() {
    requireOpen();
    if (merged) {
      throw new IllegalStateException("adapter " + index + " is merged into W: unmerge() before unloading");
    }
  }

  @Override
  public String toString() {
    return "LoraAdapter{index=" + index + ", r=" + r + ", scaling=" + scaling + ", [" + n + "," + k + "] "
        + dtype() + "}";
  }
}
