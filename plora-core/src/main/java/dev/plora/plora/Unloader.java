package dev.plora.plora;

import dev.plora.backend.Rounding;
import dev.plora.lora.LoraAdapter;
import dev.plora.optim.AdamW;
import dev.plora.optim.Parameter;
import dev.plora.tensor.DType;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/** Applies a {@link PeriodicLoraConfig} to a model's LoRA layers and their optimizer. */
public final class Unloader {
  private final PeriodicLoraConfig config;
  private long unloads;

  public Unloader(PeriodicLoraConfig config) {
    if (config == null) {
      throw new IllegalArgumentException("config: must not be null");
    }
    this.config = config;
  }

  public PeriodicLoraConfig config() {
    return config;
  }

  /** Unloads done so far. */
  public long unloads() {
    return unloads;
  }

  /** Restores the unload count, e.g. from a checkpoint. */
  public void setUnloads(long unloads) {
    if (unloads < 0) {
      throw new IllegalArgumentException("unloads: expected >= 0, got " + unloads);
    }
    this.unloads = unloads;
  }

  /** True when an unload is due after {@code completedSteps} optimizer steps. */
  public boolean isDue(long completedSteps) {
    return completedSteps > 0 && completedSteps % config.unloadEvery() == 0;
  }

  /** Unloads every adapter and treats the optimizer state of their parameters (optimizer may be null). */
  public void unload(Collection<LoraAdapter> adapters, AdamW optimizer) {
    List<Parameter> adapterParameters = new ArrayList<>();
    for (LoraAdapter layer : adapters) {
      Rounding rounding = config.rounding() != null ? config.rounding()
          : layer.dtype() == DType.BF16 ? Rounding.STOCHASTIC : Rounding.NEAREST;
      if (config.policy() instanceof UnloadPolicy.Momentum momentum) {
        layer.unloadMomentum(momentum.m(), momentum.adapterScale(), rounding);
      } else {
        layer.unloadFull(rounding);
      }
      adapterParameters.addAll(layer.parameters());
    }
    if (optimizer != null) {
      if (config.optimizerState() instanceof OptimizerStatePolicy.Reset) {
        optimizer.resetState(adapterParameters);
      } else if (config.optimizerState() instanceof OptimizerStatePolicy.Prune prune) {
        optimizer.pruneState(adapterParameters, prune.ratio());
      }
    }
    unloads++;
  }
}
