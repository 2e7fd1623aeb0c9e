package dev.plora.plora;

import dev.plora.backend.Rounding;

/**
 * PeriodicLoRA: every {@code unloadEvery} optimizer steps the adapters are unloaded into the
 * backbone by {@code policy}, and their optimizer state treated by {@code optimizerState}.
 * {@code rounding} is how BF16 weights take the update; null picks stochastic rounding for BF16
 * (many tiny updates otherwise round away) and nearest for other dtypes. Plain LoRA is no
 * PeriodicLoraConfig at all; ReLoRA is FULL + PRUNE with a jagged cosine schedule.
 */
public record PeriodicLoraConfig(int unloadEvery, UnloadPolicy policy, OptimizerStatePolicy optimizerState,
    Rounding rounding) {
  public PeriodicLoraConfig {
    if (unloadEvery < 1) {
      throw new IllegalArgumentException("unloadEvery: expected >= 1 step, got " + unloadEvery);
    }
    if (policy == null) {
      throw new IllegalArgumentException("policy: must not be null");
    }
    if (optimizerState == null) {
      throw new IllegalArgumentException("optimizerState: must not be null");
    }
  }

  public static PeriodicLoraConfig full(int unloadEvery) {
    return new PeriodicLoraConfig(unloadEvery, UnloadPolicy.full(), OptimizerStatePolicy.reset(), null);
  }

  public static PeriodicLoraConfig momentum(int unloadEvery, float m) {
    return new PeriodicLoraConfig(unloadEvery, UnloadPolicy.momentum(m), OptimizerStatePolicy.keep(), null);
  }

  public static PeriodicLoraConfig relora(int unloadEvery, double pruneRatio) {
    return new PeriodicLoraConfig(unloadEvery, UnloadPolicy.full(), OptimizerStatePolicy.prune(pruneRatio), null);
  }
}
