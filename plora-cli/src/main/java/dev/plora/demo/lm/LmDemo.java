package dev.plora.demo.lm;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.data.Example;
import dev.plora.demo.Method;
import dev.plora.demo.Progress;
import dev.plora.demo.Spectrum;
import dev.plora.finetune.Evaluation;
import dev.plora.finetune.FineTune;
import dev.plora.finetune.FineTuneResult;
import dev.plora.finetune.FineTuneSettings;
import dev.plora.io.PeftAdapter;
import dev.plora.io.Safetensors;
import dev.plora.linalg.Svd;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.model.Linear;
import dev.plora.model.Module;
import dev.plora.model.TokenBatch;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.tensor.DType;
import dev.plora.tensor.Tensor;
import dev.plora.train.TrainListener;
import dev.plora.train.TrainingDivergedException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The language-model demo: fine-tunes the shipped {@link LmDemoBase} on a language it never saw
 * with every {@link Method} through {@link FineTune}, the same path as {@code plora finetune}. Each
 * method runs its learning-rate grid at the full budget; the rate with the lowest final validation
 * loss is chosen, and that run is scored on a separate test set. The output folder keeps the base,
 * each method's chosen output (a PEFT adapter for LoRA, a merged model for the others), and the
 * caller writes the report and plots.
 *
 * <pre>{@code
 * LmDemo.Result r = LmDemo.run(LmDemoConfig.defaults(), Path.of("plora-demo-lm"), p -> {});
 * }</pre>
 */
public final class LmDemo {
  /**
   * The whole run: the base's metrics on the new language, the language's floor (its entropy) and
   * the uniform guess's loss, then one {@link LmRun} per method. The floors are the language's own loss
   * on the validation and test sets.
   */
  public record Result(LmDemoConfig config, String backend, double baseValidationLoss, double baseTestLoss,
      double baseLegalNext, double validationFloor, double testFloor, double uniform, List<LmRun> runs) {
    public LmRun run(Method m) {
      return runs.stream().filter(r -> r.method() == m).findFirst().orElseThrow();
    }
  }

  /** Every name the demo writes into its output folder (and so may replace there). */
  public static final Set<String> OUTPUTS = outputs();

  private final LmDemoConfig config;
  /** The adapters' target matching, built once: {@link #targeted} asks it for every module. */
  private final LoraConfig targets;
  private final Path out;
  private final Consumer<Progress> progress;
  private final BigramLanguage language;
  private final List<Example> validation, test;
  private final long totalSteps;
  private long stepsDone;
  private double baseValidationLoss;

  private LmDemo(LmDemoConfig config, Path out, Consumer<Progress> progress) {
    this.config = config.validate();
    this.targets = LoraConfig.builder().r(config.rank()).targetModules(config.targetModules()).build();
    this.out = out;
    this.progress = progress;
    this.language = LmDemoBase.fineTuneLanguage(config.seed());
    this.validation = language.examples(config.validationExamples(), 2_000_000 + config.seed());
    this.test = language.examples(config.testExamples(), 3_000_000 + config.seed());
    this.totalSteps = (long) config.runs() * config.steps();
  }

  /** Runs the demo into {@code out} (the base, each method's output), reporting progress. */
  public static Result run(LmDemoConfig config, Path out, Consumer<Progress> progress) throws IOException {
    return new LmDemo(config, out, progress).run();
  }

  private Result run() throws IOException {
    Path base = out.resolve("base");
    LmDemoBase.extract(base);
    double baseTest, baseLegal;
    String backendName;
    try (Backend backend = backend(); LlamaForCausalLM m = LlamaForCausalLM.load(backend, base, DType.F32, false)) {
      backendName = backend.name();
      baseValidationLoss = Evaluation.evaluate(m, validation).loss();
      baseTest = Evaluation.evaluate(m, test).loss();
      baseLegal = legalNext(m);
    }
    List<LmRun> runs = new ArrayList<>();
    for (Method m : Method.values()) {
      runs.add(method(m, base, baseTest));
    }
    LmDemoBase.deleteTree(out.resolve("sweep"));
    double loraGain = runs.stream().filter(r -> r.method() == Method.LORA).findFirst().orElseThrow().gain();
    List<LmRun> withRatios = runs.stream().map(r -> r.withGainVsLora(loraGain > 0 ? r.gain() / loraGain : Double.NaN))
        .toList();
    progress.accept(new Progress("done", 1));
    return new Result(config, backendName, baseValidationLoss, baseTest, baseLegal, language.loss(validation),
        language.loss(test), Math.log(LmDemoBase.VOCAB), withRatios);
  }

  private Backend backend() {
    return config.backend() == null ? Backends.create() : Backends.create(config.backend());
  }

  /** The sweep at the full budget, then the chosen run's test metrics and ΔW ranks. */
  private LmRun method(Method method, Path base, double baseTest) throws IOException {
    List<double[]> sweep = new ArrayList<>();
    FineTuneResult best = null;
    Path bestDir = null;
    double bestLoss = Double.POSITIVE_INFINITY;
    for (double lr : config.learningRates(method)) {
      Path dir = out.resolve("sweep").resolve(method.reportName() + "-lr" + String.format(Locale.ROOT, "%.0e", lr));
      FineTuneResult r = train(method, lr, base, dir);
      double loss = r == null ? Double.POSITIVE_INFINITY : r.finalEval().loss();
      sweep.add(new double[] {lr, loss});
      if (loss < bestLoss) {
        bestLoss = loss;
        best = r;
        bestDir = dir;
      }
    }
    if (best == null) {
      throw new IllegalStateException(method.reportName() + ": every learning rate of the sweep diverged");
    }
    Path chosen = out.resolve(method.reportName());
    LmDemoBase.deleteTree(chosen);
    Files.move(bestDir, chosen, StandardCopyOption.ATOMIC_MOVE);
    LmDemoBase.deleteTree(chosen.resolve(FineTune.CHECKPOINTS));

    long[] steps = best.evals().stream().mapToLong(FineTuneResult.Eval::step).toArray();
    double[] curve = best.evals().stream().mapToDouble(e -> e.result().loss()).toArray();
    double testLoss, legal;
    Map<String, double[]> ranks = new LinkedHashMap<>();
    double[] spectrum;
    try (Backend backend = backend();
        LlamaForCausalLM m = LlamaForCausalLM.load(backend, method == Method.LORA ? base : chosen, DType.F32, false)) {
      if (method == Method.LORA) {
        PeftAdapter.apply(m, chosen);
      }
      testLoss = Evaluation.evaluate(m, test).loss();
      legal = legalNext(m);
      spectrum = deltaRanks(m, base, ranks);
    }
    int unloadEvery = switch (method) {
      case PLORA_FULL, RELORA -> config.unloadEvery();
      case PLORA_MOMENTUM -> 1;
      default -> 0;
    };
    return new LmRun(method, method.usesAdapters() ? config.rank() : 0, unloadEvery,
        method == Method.PLORA_MOMENTUM ? config.momentum() : 0f, best.settings().lr(), sweep,
        prepend(0, steps), prepend(baseValidationLoss, curve), testLoss, legal,
        baseTest - testLoss, Double.NaN, ranks, best.trainableBytes(), best.seconds(), best.tokensPerSecond(), spectrum);
  }

  /** One fine-tuning run; null when it diverged (the sweep then passes over its rate). */
  private FineTuneResult train(Method method, double lr, Path base, Path dir) throws IOException {
    FineTuneSettings.Builder s = FineTuneSettings.builder(base, dir).method(method.fineTuneMethod()).lr(lr)
        .steps(config.steps()).schedule("cosine").warmup(Math.max(1, config.steps() / 20)).backend(config.backend())
        .dtype(DType.F32).seed(config.seed()).evalEvery(config.evalEvery()).saveEvery(Integer.MAX_VALUE, 1)
        .force(true);
    if (method.usesAdapters()) {
      s.r(config.rank()).alpha(config.alpha()).targetModules(config.targetModules());
    }
    switch (method) {
      case PLORA_FULL, RELORA -> s.unloadEvery(config.unloadEvery());
      case PLORA_MOMENTUM -> s.unloadEvery(1).momentum(config.momentum());
      default -> { }
    }
    String label = String.format(Locale.ROOT, "%s lr %.0e", method.reportName(), lr);
    long startDone = stepsDone;
    TrainListener listener = new TrainListener() {
      @Override
      public void onStep(StepEvent e) {
        stepsDone = startDone + e.step() + 1;
        if ((e.step() + 1) % 50 == 0) {
          progress.accept(new Progress(label, stepsDone / (double) totalSteps));
        }
      }
    };
    progress.accept(new Progress(label, stepsDone / (double) totalSteps));
    try {
      return FineTune.builder(s.build()).train(language.batches(config.batch(), 4_000_000 + config.seed()))
          .eval(validation).listener(listener).build().run();
    } catch (TrainingDivergedException e) {
      return null;
    } finally {
      stepsDone = startDone + config.steps();
    }
  }

  /** The fraction of test positions where the model's most likely next token may follow the current one. */
  private double legalNext(LlamaForCausalLM model) {
    long legal = 0, positions = 0;
    for (Example e : test) {
      int[] ids = e.inputIds();
      try (TokenBatch batch = TokenBatch.pack(model.backend(), List.of(ids), List.of(e.labels()));
          Tensor logits = model.logits(batch)) {
        float[] z = logits.toFloatArray();
        int vocab = z.length / ids.length;
        for (int i = 0; i + 1 < ids.length; i++) {
          int argmax = 0;
          for (int v = 1; v < vocab; v++) {
            if (z[i * vocab + v] > z[i * vocab + argmax]) {
              argmax = v;
            }
          }
          legal += language.allows(ids[i], argmax) ? 1 : 0;
          positions++;
        }
      }
    }
    return legal / (double) positions;
  }

  /**
   * ΔW = W_tuned − W_base of every module the adapters target (for LoRA, W_tuned includes s·B·A):
   * its entropy effective rank and σ>1% count by module path; returns the first module's singular values.
   */
  private double[] deltaRanks(LlamaForCausalLM model, Path base, Map<String, double[]> ranks) throws IOException {
    double[] first = null;
    try (Safetensors.Reader b = Safetensors.open(base.resolve("model.safetensors"))) {
      for (Map.Entry<String, Module> e : model.modules().entrySet()) {
        String path = e.getKey();
        Module module = e.getValue();
        if (!(module instanceof LoraLinear || module instanceof Linear) || !targeted(path, model.outputHead())) {
          continue;
        }
        float[] w0 = b.floats(path + ".weight"), w1;
        int rows, cols;
        if (module instanceof LoraLinear lora) {
          try (Tensor w = lora.effectiveWeight()) {
            w1 = w.toFloatArray();
            rows = (int) w.rows();
            cols = (int) w.cols();
          }
        } else {
          Tensor w = ((Linear) module).weight();
          w1 = w.toFloatArray();
          rows = (int) w.rows();
          cols = (int) w.cols();
        }
        double[] d = new double[w1.length];
        for (int k = 0; k < d.length; k++) {
          d[k] = (double) w1[k] - w0[k];
        }
        double[] sv = Svd.singularValues(d, rows, cols);
        ranks.put(path, new double[] {Spectrum.effectiveRank(sv), Spectrum.rankAbove(sv, 0.01)});
        if (first == null) {
          first = sv;
        }
      }
    }
    return first;
  }

  /** Whether the adapters wrap {@code path}, by the library's own matching of target_modules. */
  private boolean targeted(String path, String head) {
    return targets.targets(path, path.equals(head));
  }

  private static Set<String> outputs() {
    Set<String> names = new java.util.TreeSet<>(Set.of("base", "sweep", LmDemoReport.REPORT, LmDemoReport.LOSS_PLOT,
        LmDemoReport.SPECTRUM_PLOT));
    for (Method m : Method.values()) {
      names.add(m.reportName());
    }
    return java.util.Collections.unmodifiableSet(names);
  }

  private static long[] prepend(long head, long[] tail) {
    long[] r = new long[tail.length + 1];
    r[0] = head;
    System.arraycopy(tail, 0, r, 1, tail.length);
    return r;
  }

  private static double[] prepend(double head, double[] tail) {
    double[] r = new double[tail.length + 1];
    r[0] = head;
    System.arraycopy(tail, 0, r, 1, tail.length);
    return r;
  }
}
