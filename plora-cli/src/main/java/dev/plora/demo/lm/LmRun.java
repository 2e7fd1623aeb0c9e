package dev.plora.demo.lm;

import dev.plora.demo.Method;
import java.util.List;
import java.util.Map;

/**
 * One method's result in the language-model demo: the chosen learning rate and the sweep behind it
 * (final validation loss per rate), the validation curve of the chosen run, the held-out test
 * metrics, the rank of each adapted module's accumulated update ΔW, memory and time.
 */
public record LmRun(Method method, int rank, int unloadEvery, float momentum, double lr, List<double[]> sweep,
    long[] curveSteps, double[] curve, double testLoss, double legalNext, double gain, double gainVsLora,
    Map<String, double[]> moduleRanks, long trainableBytes, double seconds, double tokensPerSecond,
    double[] spectrum) {

  /** Mean entropy effective rank of ΔW over the adapted modules. */
  public double effectiveRank() {
    return moduleRanks.values().stream().mapToDouble(r -> r[0]).average().orElse(Double.NaN);
  }

  /** Mean count of ΔW's singular values above 1% of its largest over the adapted modules. */
  public double rankAbove1pct() {
    return moduleRanks.values().stream().mapToDouble(r -> r[1]).average().orElse(Double.NaN);
  }

  public LmRun withGainVsLora(double ratio) {
    return new LmRun(method, rank, unloadEvery, momentum, lr, sweep, curveSteps, curve, testLoss, legalNext, gain,
        ratio, moduleRanks, trainableBytes, seconds, tokensPerSecond, spectrum);
  }
}
