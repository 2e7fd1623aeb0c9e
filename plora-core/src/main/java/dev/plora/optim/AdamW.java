package dev.plora.optim;

import dev.plora.backend.AdamwHyper;
import dev.plora.backend.AdamwSlot;
import dev.plora.backend.Backend;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * AdamW as PyTorch defines it (decoupled weight decay, bias correction), fused: one native call
 * updates every parameter and refreshes their compute-dtype copies. LoRA+ is a learning-rate
 * ratio for the B matrices.
 */
public final class AdamW implements AutoCloseable {
  /** Hyper-parameters; the learning rate comes from a schedule at each step. */
  public record Config(float beta1, float beta2, float eps, float weightDecay, float loraPlusRatio) {
    public static final Config DEFAULT = new Config(0.9f, 0.999f, 1e-8f, 0f, 1f);

    public Config {
      List<String> problems = new ArrayList<>();
      if (!(beta1 >= 0 && beta1 < 1)) {
        problems.add("beta1: expected 0 <= beta1 < 1, got " + beta1);
      }
      if (!(beta2 >= 0 && beta2 < 1)) {
        problems.add("beta2: expected 0 <= beta2 < 1, got " + beta2);
      }
      if (!(eps > 0 && Float.isFinite(eps))) {
        problems.add("eps: expected a finite value > 0, got " + eps);
      }
      if (!(weightDecay >= 0 && Float.isFinite(weightDecay))) {
        problems.add("weightDecay: expected a finite value >= 0, got " + weightDecay);
      }
      if (!(loraPlusRatio > 0 && Float.isFinite(loraPlusRatio))) {
        problems.add("loraPlusRatio: expected a finite value > 0, got " + loraPlusRatio);
      }
      if (!problems.isEmpty()) {
        throw new IllegalArgumentException("invalid AdamW config: " + String.join("; ", problems));
      }
    }

    public Config withWeightDecay(float wd) {
      return new Config(beta1, beta2, eps, wd, loraPlusRatio);
    }

    public Config withLoraPlusRatio(float ratio) {
      return new Config(beta1, beta2, eps, weightDecay, ratio);
    }
  }

  private final Backend backend;
  private final Config config;
  private final Map<Parameter, Tensor[]> moments = new LinkedHashMap<>();
  private long steps;
  private boolean closed;

  public AdamW(Backend backend, List<Parameter> parameters, Config config) {
    if (backend == null || parameters == null || config == null) {
      throw new IllegalArgumentException("AdamW: backend, parameters and config must not be null");
    }
    this.backend = backend;
    this.config = config;
    try {
      for (Parameter p : parameters) {
        if (moments.containsKey(p)) {
          throw new IllegalArgumentException("AdamW: parameter " + p.name() + " is listed twice");
        }
        Tensor m = backend.allocate(p.value().rows(), p.value().cols(), DType.F32).fill(0f);
        Tensor v = backend.allocate(p.value().rows(), p.value().cols(), DType.F32).fill(0f);
        moments.put(p, new Tensor[] {m, v});
      }
    } catch (RuntimeException e) {
      close();
      throw e;
    }
  }

  public Config config() {
    return config;
  }

  public List<Parameter> parameters() {
    return List.copyOf(moments.keySet());
  }

  /** Steps taken (the t of the bias correction is steps + 1 for the next step). */
  public long steps() {
    return steps;
  }

  /** Sets the step count, e.g. when resuming. */
  public void setSteps(long steps) {
    if (steps < 0) {
      throw new IllegalArgumentException("steps: expected >= 0, got " + steps);
    }
    this.steps = steps;
  }

  /**
   * One step over every parameter with learning rate {@code lr}; gradients are multiplied by
   * {@code gradScale} first (1/accumulation, times the clipping factor). A gradient holding NaN
   * or infinity is refused before anything is written: the step throws
   * {@link NonFiniteGradientException} naming the parameter, and the weights, moments and step
   * count stay as they were.
   */
  public void step(float lr, float gradScale) {
    requireOpen();
    step(lr, gradScale, gradientSumSquares());
  }

  /**
   * As {@link #step(float, float)}, given Σ g² over the current gradients as the caller already
   * computed it ({@link #gradientSumSquares()}; the Trainer has it from its clipping norm), so that
   * the gradients are not read a second time. The sum is trusted: it must be of the gradients as
   * they are now. A NaN or infinite sum is refused as {@link #step(float, float)} refuses.
   */
  public void step(float lr, float gradScale, double gradientSumSquares) {
    requireOpen();
    if (!(lr >= 0 && Float.isFinite(lr))) {
      throw new IllegalArgumentException("lr: expected a finite value >= 0, got " + lr);
    }
    if (!(gradScale >= 0 && Float.isFinite(gradScale))) {
      throw new IllegalArgumentException("gradScale: expected a finite value >= 0, got " + gradScale);
    }
    if (!Double.isFinite(gradientSumSquares)) {
      throw nonFiniteGradient();
    }
    long t = steps + 1;
    float bc1 = (float) (1 - Math.pow(config.beta1(), t));
    float bc2 = (float) (1 - Math.pow(config.beta2(), t));
    List<AdamwSlot> slots = new ArrayList<>(moments.size());
    for (Map.Entry<Parameter, Tensor[]> e : moments.entrySet()) {
      Parameter p = e.getKey();
      float scale = p.role() == Parameter.Role.LORA_B ? config.loraPlusRatio() : 1f;
      slots.add(new AdamwSlot(p.value(), p.grad(), e.getValue()[0], e.getValue()[1], p.computeCopy(), scale));
    }
    backend.adamw(slots, new AdamwHyper(lr, config.beta1(), config.beta2(), config.eps(), config.weightDecay(),
        gradScale, bc1, bc2));
    steps = t;
  }

  /** Σ g² over the gradients of all parameters, in one native call (one wait on a GPU). */
  public double gradientSumSquares() {
    requireOpen();
    return backend.sumSquares(moments.keySet().stream().map(Parameter::grad).toList());
  }

  // Names the parameter whose gradient is not finite (one count per parameter: the failure path).
  private RuntimeException nonFiniteGradient() {
    for (Parameter p : moments.keySet()) {
      long bad = backend.countNonFinite(p.grad());
      if (bad > 0) {
        return new NonFiniteGradientException(p.name(), bad, p.grad().rows() * (long) p.grad().cols(), steps);
      }
    }
    // every value finite (fp32 squares cannot overflow a double sum): the sum passed in is stale
    return new IllegalArgumentException("gradientSumSquares: not finite, but every gradient value is: "
        + "the sum passed to step is not of the current gradients");
  }

  /** The first moment (m) of a parameter. */
  public Tensor firstMoment(Parameter p) {
    return moment(p)[0];
  }

  /** The second moment (v) of a parameter. */
  public Tensor secondMoment(Parameter p) {
    return moment(p)[1];
  }

  /** Zeroes the moments of the given parameters (ReLoRA-style reset at an unload). */
  public void resetState(Collection<Parameter> parameters) {
    for (Parameter p : parameters) {
      for (Tensor t : moment(p)) {
        t.fill(0f);
      }
    }
  }

  /**
   * ReLoRA's magnitude pruning of the moments: for each of the given parameters, zeroes the
   * {@code round(ratio·n)} entries of smallest first-moment magnitude |m| in both m and v, and
   * keeps the others exactly. Pruning m and v at the same positions matters: a kept m over a
   * pruned v would divide by ε and blow the next step up.
   */
  public void pruneState(Collection<Parameter> parameters, double ratio) {
    if (!(ratio >= 0 && ratio <= 1)) {
      throw new IllegalArgumentException("prune ratio: expected 0 <= ratio <= 1, got " + ratio);
    }
    for (Parameter p : parameters) {
      Tensor[] mv = moment(p);
      float[] m = mv[0].toFloatArray();
      float[] v = mv[1].toFloatArray();
      int prune = (int) Math.round(ratio * m.length);
      if (prune == 0) {
        continue;
      }
      Integer[] order = new Integer[m.length];
      for (int i = 0; i < order.length; i++) {
        order[i] = i;
      }
      Arrays.sort(order, (a, b) -> Float.compare(Math.abs(m[a]), Math.abs(m[b])));
      for (int i = 0; i < prune; i++) {
        m[order[i]] = 0f;
        v[order[i]] = 0f;
      }
      mv[0].copyFrom(m);
      mv[1].copyFrom(v);
    }
  }

  /** Bytes of optimizer state (both moments of every parameter). */
  public long stateBytes() {
    long bytes = 0;
    for (Tensor[] mv : moments.values()) {
      bytes += (mv[0].elementCount() + mv[1].elementCount()) * 4L;
    }
    return bytes;
  }

  private Tensor[] moment(Parameter p) {
    requireOpen();
    Tensor[] mv = moments.get(p);
    if (mv == null) {
      throw new IllegalArgumentException("parameter " + p.name() + " is not optimised by this AdamW");
    }
    return mv;
  }

  private void requireOpen() {
    if (closed) {
      throw new IllegalStateException("optimizer is closed");
    }
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (Tensor[] mv : moments.values()) {
      mv[0].close();
      mv[1].close();
    }
  }
}
