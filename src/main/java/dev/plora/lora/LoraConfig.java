package dev.plora.lora;

import java.util.ArrayList;
import java.util.List;

/**
 * Hyper-parameters of a LoRA adapter, with PEFT's names and defaults: rank {@code r} = 8,
 * {@code alpha} = 8, {@code dropout} = 0, scaling {@code alpha / r} (or {@code alpha / √r} with
 * {@code rsLora}), A initialised Kaiming-uniform and B = 0. Validated when built.
 */
public final class LoraConfig {
  /** How A is initialised (B always starts at zero, so the adapter starts as the identity). */
  public enum Init {
    /** U(−1/√K, 1/√K): PyTorch's Kaiming-uniform with a = √5, PEFT's default. */
    KAIMING_UNIFORM,
    /** N(0, 1/r): PEFT's "gaussian". */
    GAUSSIAN
  }

  private final int r;
  private final float alpha;
  private final float dropout;
  private final boolean rsLora;
  private final Init init;
  private final long seed;

  private LoraConfig(Builder b) {
    this.r = b.r;
    this.alpha = b.alpha;
    this.dropout = b.dropout;
    this.rsLora = b.rsLora;
    this.init = b.init;
    this.seed = b.seed;
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder starting from this configuration. */
  public Builder toBuilder() {
    return new Builder().r(r).alpha(alpha).dropout(dropout).rsLora(rsLora).init(init).seed(seed);
  }

  public int r() {
    return r;
  }

  public float alpha() {
    return alpha;
  }

  public float dropout() {
    return dropout;
  }

  public boolean rsLora() {
    return rsLora;
  }

  public Init init() {
    return init;
  }

  /** Seed of the Philox streams for inits and dropout masks. */
  public long seed() {
    return seed;
  }

  /** The factor s of the update s·B·A: alpha / r, or alpha / √r with rsLoRA. */
  public float scaling() {
    return rsLora ? (float) (alpha / Math.sqrt(r)) : alpha / r;
  }

  @Override
  public String toString() {
    return "LoraConfig{r=" + r + ", alpha=" + alpha + ", dropout=" + dropout + ", rsLora=" + rsLora + ", init="
        + init + ", seed=" + seed + "}";
  }

  public static final class Builder {
    private int r = 8;
    private float alpha = 8f;
    private float dropout = 0f;
    private boolean rsLora;
    private Init init = Init.KAIMING_UNIFORM;
    private long seed;

    private Builder() {}

    public Builder r(int r) {
      this.r = r;
      return this;
    }

    public Builder alpha(float alpha) {
      this.alpha = alpha;
      return this;
    }

    public Builder dropout(float dropout) {
      this.dropout = dropout;
      return this;
    }

    public Builder rsLora(boolean rsLora) {
      this.rsLora = rsLora;
      return this;
    }

    public Builder init(Init init) {
      this.init = init;
      return this;
    }

    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /** Validates every field and reports all that are wrong in one exception. */
    public LoraConfig build() {
      List<String> problems = new ArrayList<>();
      if (r < 1) {
        problems.add("r: expected >= 1, got " + r);
      }
      if (!(Float.isFinite(alpha) && alpha > 0)) {
        problems.add("alpha: expected a finite value > 0, got " + alpha);
      }
      if (!(dropout >= 0 && dropout < 1)) {
        problems.add("dropout: expected 0 <= dropout < 1, got " + dropout);
      }
      if (init == null) {
        problems.add("init: must not be null");
      }
      if (!problems.isEmpty()) {
        throw new IllegalArgumentException("invalid LoraConfig: " + String.join("; ", problems));
      }
      return new LoraConfig(this);
    }
  }
}
