package dev.plora.optim;

/**
 * Learning rate per optimizer step (0-based: the step about to be taken).
 *
 * <ul>
 *   <li>{@link #constant}: the same value at every step;
 *   <li>{@link #warmupCosine}: linear warm-up over {@code warmup} steps to {@code peak}, then a
 *       cosine decay to {@code min} at {@code total};
 *   <li>{@link #warmupLinear}: linear warm-up over {@code warmup} steps to {@code peak}, then a
 *       linear decay to 0 at {@code total} (Hugging Face's default "linear" schedule);
 *   <li>{@link #jaggedCosine}: ReLoRA's schedule: the warm-up cosine, with a linear re-warm-up
 *       over {@code restartWarmup} steps at the start of every stage after the first (the learning
 *       rate restarts from near zero after each unload).
 * </ul>
 */
@FunctionalInterface
public interface LrSchedule {
  double lr(long step);

  static LrSchedule constant(double lr) {
    requireRate("lr", lr);
    return step -> lr;
  }

  static LrSchedule warmupCosine(double peak, long warmup, long total, double min) {
    requireRate("peak", peak);
    requireRate("min", min);
    if (warmup < 0 || total <= 0 || warmup > total) {
      throw new IllegalArgumentException("warmupCosine: expected 0 <= warmup <= total and total > 0, got warmup "
          + warmup + ", total " + total);
    }
    return step -> {
      if (step < warmup) {
        return peak * (step + 1) / warmup;
      }
      double progress = total == warmup ? 1 : Math.min(1.0, (double) (step - warmup) / (total - warmup));
      return min + (peak - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
    };
  }

  static LrSchedule warmupLinear(double peak, long warmup, long total) {
    requireRate("peak", peak);
    if (warmup < 0 || total <= 0 || warmup > total) {
      throw new IllegalArgumentException("warmupLinear: expected 0 <= warmup <= total and total > 0, got warmup "
          + warmup + ", total " + total);
    }
    return step -> {
      if (step < warmup) {
        return peak * (step + 1) / warmup;
      }
      return total == warmup ? 0 : peak * Math.max(0.0, (double) (total - step) / (total - warmup));
    };
  }

  static LrSchedule jaggedCosine(double peak, long warmup, long total, double min, long stageLength,
      long restartWarmup) {
    LrSchedule envelope = warmupCosine(peak, warmup, total, min);
    if (stageLength < 1 || restartWarmup < 0 || restartWarmup > stageLength) {
      throw new IllegalArgumentException("jaggedCosine: expected stageLength >= 1 and 0 <= restartWarmup <= "
          + "stageLength, got " + stageLength + ", " + restartWarmup);
    }
    return step -> {
      double base = envelope.lr(step);
      long inStage = step % stageLength;
      if (step >= stageLength && inStage < restartWarmup) {
        return base * (inStage + 1) / restartWarmup;
      }
      return base;
    };
  }

  private static void requireRate(String name, double value) {
    if (!(value >= 0 && Double.isFinite(value))) {
      throw new IllegalArgumentException(name + ": expected a finite learning rate >= 0, got " + value);
    }
  }
}
