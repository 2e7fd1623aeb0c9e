package dev.plora.finetune;

import java.util.Locale;

/** How a fine-tuning run updates the model. */
public enum Method {
  /** LoRA adapters on the target modules; the base stays frozen. Output: a PEFT adapter. */
  LORA(false),
  /** PeriodicLoRA: LoRA unloaded into the base every few steps (or a fraction each step). Output: merged weights. */
  PLORA(true),
  /** ReLoRA: PLoRA with FULL unloads, pruned optimizer moments and a jagged schedule. Output: merged weights. */
  RELORA(true),
  /** Every weight trainable, norms and embeddings included: the baseline. Output: merged weights. */
  FULL(true);

  private final boolean mergedOutput;

  Method(boolean mergedOutput) {
    this.mergedOutput = mergedOutput;
  }

  /** Whether the run's result is a full model (its update is not low-rank) rather than an adapter. */
  public boolean mergedOutput() {
    return mergedOutput;
  }

  public boolean usesAdapters() {
    return this != FULL;
  }

  /** The lower-case name used on the command line and in run.json. */
  public String cliName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** The method named {@code name} (any case), or an exception listing the choices. */
  public static Method parse(String name) {
    for (Method m : values()) {
      if (m.name().equalsIgnoreCase(name)) {
        return m;
      }
    }
    throw new IllegalArgumentException("method: expected lora, plora, relora or full, got '" + name + "'");
  }
}
