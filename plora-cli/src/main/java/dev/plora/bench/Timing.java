package dev.plora.bench;

import dev.plora.backend.Backend;
import java.util.Arrays;
import java.util.List;

/** Wall-clock timing of a step: warm-up runs, then timed runs, each ended by a device sync. */
public final class Timing {
  private final int warmup;
  private final int runs;
  private final double budgetSeconds;

  /**
   * @param warmup untimed runs first
   * @param runs timed runs wanted
   * @param budgetSeconds stop timing early (after at least 3 runs) once this much time is spent
   */
  public Timing(int warmup, int runs, double budgetSeconds) {
    if (warmup < 0 || runs < 1 || !(budgetSeconds > 0)) {
      throw new IllegalArgumentException("timing: expected warmup >= 0, runs >= 1, budget > 0; got " + warmup + ", "
          + runs + ", " + budgetSeconds);
    }
    this.warmup = warmup;
    this.runs = runs;
    this.budgetSeconds = budgetSeconds;
  }

  /** This timing with at least {@code minRuns} timed runs (same warm-up and budget). */
  public Timing withAtLeast(int minRuns) {
    return new Timing(warmup, Math.max(runs, minRuns), budgetSeconds);
  }

  /** Times {@code step} on {@code backend} and returns the runs in milliseconds, sorted. */
  public double[] measure(Backend backend, Runnable step) {
    for (int i = 0; i < warmup; i++) {
      step.run();
    }
    backend.synchronize();
    double[] ms = new double[runs];
    int done = 0;
    long start = System.nanoTime();
    while (done < runs) {
      long t0 = System.nanoTime();
      step.run();
      backend.synchronize();
      ms[done++] = (System.nanoTime() - t0) / 1e6;
      if (done >= 3 && (System.nanoTime() - start) / 1e9 > budgetSeconds) {
        break;
      }
    }
    double[] taken = Arrays.copyOf(ms, done);
    Arrays.sort(taken);
    return taken;
  }

  /**
   * Times several steps in interleaved rounds (each round runs every step once, in turn), so
   * that drifts of the machine — clock, temperature, neighbours — hit them alike and their
   * ratios stay fair. Returns each step's runs in milliseconds, sorted.
   */
  public double[][] measureInterleaved(Backend backend, List<Runnable> steps) {
    for (int i = 0; i < warmup; i++) {
      steps.forEach(Runnable::run);
    }
    backend.synchronize();
    double[][] ms = new double[steps.size()][runs];
    int done = 0;
    long start = System.nanoTime();
    while (done < runs) {
      for (int s = 0; s < steps.size(); s++) {
        long t0 = System.nanoTime();
        steps.get(s).run();
        backend.synchronize();
        ms[s][done] = (System.nanoTime() - t0) / 1e6;
      }
      done++;
      if (done >= 3 && (System.nanoTime() - start) / 1e9 > budgetSeconds) {
        break;
      }
    }
    double[][] taken = new double[steps.size()][];
    for (int s = 0; s < steps.size(); s++) {
      taken[s] = Arrays.copyOf(ms[s], done);
      Arrays.sort(taken[s]);
    }
    return taken;
  }

  public static double median(double[] sorted) {
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
}
