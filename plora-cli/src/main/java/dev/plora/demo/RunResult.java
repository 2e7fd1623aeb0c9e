package dev.plora.demo;

import java.util.List;

/**
 * One method's run: the settings, the chosen learning rate and the sweep behind it, validation
 * losses, the rank of the learned update, memory and time. Ranks are means over layers.
 */
public record RunResult(Method method, int rank, int unloadEvery, float momentum, double lr, List<double[]> lrSweep,
    double initialValLoss, double finalValLoss, double gainVsLora, double effectiveRank, double rankAbove1pct,
    long trainableBytes, double seconds, double stepsPerSecond, long[] curveSteps, double[] curve,
    double[] spectrum) {

  public double gain() {
    return initialValLoss - finalValLoss;
  }

  public RunResult withGainVsLora(double ratio) {
    return new RunResult(method, rank, unloadEvery, momentum, lr, lrSweep, initialValLoss, finalValLoss, ratio,
        effectiveRank, rankAbove1pct, trainableBytes, seconds, stepsPerSecond, curveSteps, curve, spectrum);
  }
}
