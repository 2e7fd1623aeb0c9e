package dev.plora.demo.lm;

import dev.plora.demo.Method;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Settings of one language-model demo run. {@link #defaults()} is the README's run (about 6
 * minutes on 2 cores), {@link #quick()} a shorter one (800 steps, two learning rates per method,
 * under 2 minutes) that shows a smaller effect.
 * Every method gets the same steps, batch and data; adapter methods the same rank and targets; each
 * method its own learning rate, the best of its grid on the validation set.
 */
public record LmDemoConfig(long seed, int steps, int rank, float alpha, List<String> targetModules,
    int unloadEvery, float momentum, int batch, int evalEvery, int validationExamples, int testExamples,
    Map<Method, double[]> learningRates, String backend, boolean quickRun) {

  /** Targets of the LoRA family: PEFT's default for Llama models. */
  public static final List<String> TARGETS = List.of("q_proj", "v_proj");

  public LmDemoConfig {
    targetModules = List.copyOf(targetModules);
    EnumMap<Method, double[]> copy = new EnumMap<>(Method.class);
    learningRates.forEach((m, lrs) -> copy.put(m, lrs.clone()));
    learningRates = copy;
  }

  public static LmDemoConfig defaults() {
    return new LmDemoConfig(1, 2400, 1, 2f, TARGETS, 10, 0.1f, 8, 100, 48, 96, grids(), null, false);
  }

  public static LmDemoConfig quick() {
    return new LmDemoConfig(1, 800, 1, 2f, TARGETS, 10, 0.1f, 8, 100, 48, 96, quickGrids(), null, true);
  }

  /**
   * Learning-rate grids in half-decade steps with each method's optimum inside (on seeds 1–3);
   * LoRA, the baseline, gets a fourth point. MOMENTUM wants a 10–30× higher rate than FULL
   * unloading: it moves only a tenth of the adapter into W each step.
   */
  private static Map<Method, double[]> grids() {
    Map<Method, double[]> g = new EnumMap<>(Method.class);
    g.put(Method.FULL, new double[] {3e-3, 1e-2, 3e-2});
    g.put(Method.LORA, new double[] {1e-2, 3e-2, 1e-1, 3e-1});
    g.put(Method.PLORA_FULL, new double[] {3e-3, 1e-2, 3e-2});
    g.put(Method.PLORA_MOMENTUM, new double[] {1e-1, 3e-1, 1e0});
    g.put(Method.RELORA, new double[] {3e-3, 1e-2, 3e-2});
    return g;
  }

  /** Two points per method, the two best of {@link #grids()} on seeds 1–3, so that a quick run stays under 2 minutes. */
  private static Map<Method, double[]> quickGrids() {
    Map<Method, double[]> g = new EnumMap<>(Method.class);
    g.put(Method.FULL, new double[] {1e-2, 3e-2});
    g.put(Method.LORA, new double[] {3e-2, 1e-1});
    g.put(Method.PLORA_FULL, new double[] {1e-2, 3e-2});
    g.put(Method.PLORA_MOMENTUM, new double[] {1e-1, 3e-1});
    g.put(Method.RELORA, new double[] {1e-2, 3e-2});
    return g;
  }

  public double[] learningRates(Method method) {
    return learningRates.get(method).clone();
  }

  /** Fine-tuning runs of the whole demo: every method's every learning rate. */
  public int runs() {
    return learningRates.values().stream().mapToInt(lrs -> lrs.length).sum();
  }

  /** Checks every setting and reports all that are wrong at once. */
  public LmDemoConfig validate() {
    List<String> problems = new ArrayList<>();
    if (steps < 1) {
      problems.add("--steps: expected >= 1, got " + steps);
    }
    if (rank < 1 || rank > LmDemoBase.HIDDEN) {
      problems.add("--rank: expected 1.." + LmDemoBase.HIDDEN + ", got " + rank);
    }
    if (targetModules.isEmpty()) {
      problems.add("--target-modules: expected at least one module name, got none");
    }
    if (unloadEvery < 1) {
      problems.add("--unload-every: expected >= 1, got " + unloadEvery);
    }
    for (Method m : Method.values()) {
      double[] lrs = learningRates.get(m);
      if (lrs == null || lrs.length == 0) {
        problems.add(m.reportName() + ": expected at least one learning rate, got none");
      }
    }
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(String.join("; ", problems));
    }
    return this;
  }

  public LmDemoConfig withSeed(long s) {
    return new LmDemoConfig(s, steps, rank, alpha, targetModules, unloadEvery, momentum, batch, evalEvery,
        validationExamples, testExamples, learningRates, backend, quickRun);
  }

  /** These settings with the given ones replaced where not null; α stays 2r. */
  public LmDemoConfig with(String backendName, Integer r, Integer st, Integer every, List<String> targets) {
    int rk = r == null ? rank : r;
    int s = st == null ? steps : st;
    return new LmDemoConfig(seed, s, rk, 2f * rk, targets == null ? targetModules : targets,
        every == null ? unloadEvery : every, momentum, batch, Math.max(1, Math.min(evalEvery, s / 4)),
        validationExamples, testExamples, learningRates, backendName == null ? backend : backendName, quickRun);
  }

  /** These settings with one learning rate per method (for tests and reruns of a chosen rate). */
  public LmDemoConfig withLearningRates(Map<Method, double[]> lrs) {
    return new LmDemoConfig(seed, steps, rank, alpha, targetModules, unloadEvery, momentum, batch, evalEvery,
        validationExamples, testExamples, lrs, backend, quickRun);
  }
}
