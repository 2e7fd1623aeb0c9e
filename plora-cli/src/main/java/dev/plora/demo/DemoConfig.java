package dev.plora.demo;

import dev.plora.tensor.DType;
import java.util.ArrayList;
import java.util.List;

/**
 * Settings of one demo run. {@link #defaults()} is the README's run (under 2 minutes on 2
 * cores); {@link #quick()} the CI-sized one (under 20 seconds).
 */
public record DemoConfig(long seed, DType dtype, int rank, int steps, int batch, int unloadEvery, float momentum,
    int momentumEvery, int width, int layers, int trainSize, int valSize, double updateNorm, int evalEvery,
    int sweepSteps, double[] loraLrs, double[] fullLrs) {

  public static DemoConfig defaults() {
    return new DemoConfig(1, DType.F32, 8, 1200, 64, 100, 0.1f, 1, 256, 3, 8192, 1024, 0.25, 40, 200,
        new double[] {3e-3, 1e-2, 3e-2}, new double[] {3e-4, 1e-3, 3e-3});
  }

  public static DemoConfig quick() {
    return new DemoConfig(1, DType.F32, 8, 150, 64, 30, 0.1f, 1, 256, 3, 2048, 512, 0.25, 15, 40,
        new double[] {3e-3, 1e-2}, new double[] {3e-4, 1e-3});
  }

  /** Checks every setting and reports all that are wrong at once. */
  public DemoConfig validate() {
    List<String> problems = new ArrayList<>();
    if (rank < 1 || rank > width) {
      problems.add("--rank: expected 1.." + width + ", got " + rank);
    }
    if (steps < 1) {
      problems.add("--steps: expected >= 1, got " + steps);
    }
    if (unloadEvery < 1) {
      problems.add("--unload-every: expected >= 1, got " + unloadEvery);
    }
    if (!(momentum > 0 && momentum <= 1)) {
      problems.add("--momentum: expected 0 < m <= 1, got " + momentum);
    }
    if (momentumEvery < 1) {
      problems.add("--momentum-every: expected >= 1, got " + momentumEvery);
    }
    if (dtype == DType.F16) {
      problems.add("--dtype: expected f32 or bf16, got f16");
    }
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(String.join("; ", problems));
    }
    return this;
  }

  public DemoConfig withSeed(long s) {
    return new DemoConfig(s, dtype, rank, steps, batch, unloadEvery, momentum, momentumEvery, width, layers,
        trainSize, valSize, updateNorm, evalEvery, sweepSteps, loraLrs, fullLrs);
  }

  public DemoConfig with(DType d, Integer r, Integer st, Integer every, Float m, Integer mEvery) {
    return new DemoConfig(seed, d == null ? dtype : d, r == null ? rank : r, st == null ? steps : st, batch,
        every == null ? unloadEvery : every, m == null ? momentum : m, mEvery == null ? momentumEvery : mEvery, width,
        layers, trainSize, valSize, updateNorm, evalEvery, st == null ? sweepSteps : Math.max(1, st / 6), loraLrs,
        fullLrs);
  }
}
