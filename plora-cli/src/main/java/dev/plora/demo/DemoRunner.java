package dev.plora.demo;

import dev.plora.backend.Backend;
import dev.plora.linalg.Svd;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraConfig;
import dev.plora.lora.LoraLinear;
import dev.plora.model.Layer;
import dev.plora.model.Linear;
import dev.plora.model.Mlp;
import dev.plora.optim.LrSchedule;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.tensor.Tensor;
import dev.plora.tensor.TensorScope;
import dev.plora.train.Trainer;
import dev.plora.train.TrainingDivergedException;
import dev.plora.train.TrainListener;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Trains every {@link Method} on the same {@link TeacherTask} with the same budget (steps, batch
 * size); each method's learning rate is the best of a short sweep on the validation loss.
 */
public final class DemoRunner {
  private final Backend backend;
  private final DemoConfig config;
  private final TeacherTask task;
  private final Consumer<Progress> progress;
  private final long totalWork;
  private long workDone;

  public DemoRunner(Backend backend, DemoConfig config, TeacherTask task, Consumer<Progress> progress) {
    this.backend = backend;
    this.config = config;
    this.task = task;
    this.progress = progress;
    long work = 0;
    for (Method m : Method.values()) {
      work += (long) lrs(m).length * config.sweepSteps() + config.steps();
    }
    this.totalWork = work;
  }

  private double[] lrs(Method m) {
    return m == Method.FULL ? config.fullLrs() : config.loraLrs();
  }

  public List<RunResult> runAll() {
    List<RunResult> results = new ArrayList<>();
    for (Method m : Method.values()) {
      results.add(run(m));
    }
    double loraGain = results.stream().filter(r -> r.method() == Method.LORA).findFirst().orElseThrow().gain();
    List<RunResult> out = new ArrayList<>();
    for (RunResult r : results) {
      out.add(r.withGainVsLora(loraGain > 0 ? r.gain() / loraGain : Double.NaN));
    }
    return out;
  }

  /** The sweep, then the full run at the best learning rate. */
  public RunResult run(Method method) {
    List<double[]> sweep = new ArrayList<>();
    double bestLr = Double.NaN, bestLoss = Double.POSITIVE_INFINITY;
    for (double lr : lrs(method)) {
      double loss = train(method, lr, config.sweepSteps(), "sweep " + method.reportName() + " lr " + lr, false)
          .finalLoss;
      sweep.add(new double[] {lr, loss});
      if (loss < bestLoss) {
        bestLoss = loss;
        bestLr = lr;
      }
    }
    if (Double.isNaN(bestLr)) {
      throw new IllegalStateException(method.reportName() + ": every learning rate of the sweep diverged");
    }
    Outcome o = train(method, bestLr, config.steps(), method.reportName() + " lr " + bestLr, true);
    int unloadEvery = switch (method) {
      case PLORA_FULL, RELORA -> config.unloadEvery();
      case PLORA_MOMENTUM -> config.momentumEvery();
      default -> 0;
    };
    return new RunResult(method, method.usesAdapters() ? config.rank() : 0, unloadEvery,
        method == Method.PLORA_MOMENTUM ? config.momentum() : 0f, bestLr, sweep, o.initialLoss, o.finalLoss, Double.NaN,
        o.effectiveRank, o.rankAbove1pct, o.trainableBytes, o.trainSeconds, config.steps() / o.trainSeconds, o.curveSteps,
        o.curve, o.spectrum);
  }

  private static final class Outcome {
    double initialLoss;
    double finalLoss;
    double effectiveRank;
    double rankAbove1pct;
    long trainableBytes;
    double trainSeconds;
    long[] curveSteps;
    double[] curve;
    double[] spectrum;
  }

  private Outcome train(Method method, double lr, int steps, String label, boolean withSpectra) {
    Outcome o = new Outcome();
    try (TensorScope scope = new TensorScope(backend); Mlp model = model(scope, method)) {
      Tensor dout = scope.allocate(config.batch(), task.width, config.dtype());
      o.initialLoss = validationLoss(model);
      List<Long> curveSteps = new ArrayList<>(List.of(0L));
      List<Double> curve = new ArrayList<>(List.of(o.initialLoss));
      long[] evalNanos = {0};
      TrainListener listener = new TrainListener() {
        @Override
        public void onStep(StepEvent e) {
          workDone++;
          if ((e.step() + 1) % config.evalEvery() == 0 || e.step() + 1 == steps) {
            long t0 = System.nanoTime();
            curveSteps.add(e.step() + 1);
            curve.add(validationLoss(model));
            evalNanos[0] += System.nanoTime() - t0;
            progress.accept(new Progress(label, workDone / (double) totalWork));
          }
        }
      };
      int batchesPerEpoch = task.trainX.rows() / config.batch();
      Trainer.Builder<Integer> builder = Trainer.<Integer>builder(backend)
          .lossFunction(b -> {
            Tensor x = task.trainX.rowsView(b * config.batch(), config.batch());
            Tensor y = task.trainY.rowsView(b * config.batch(), config.batch());
            double loss = backend.mse(model.forward(x), y, dout);
            model.backward(dout);
            return loss;
          })
          .batches((step, micro) -> (int) (step % batchesPerEpoch))
          .adapters(Lora.adapters(model))
          .parameters(model.parameters())
          .steps(steps)
          .schedule(schedule(method, lr, steps))
          .periodic(periodic(method))
          .listener(listener);
      progress.accept(new Progress(label, workDone / (double) totalWork));
      long start = System.nanoTime();
      try (Trainer<Integer> trainer = builder.build()) {
        o.trainableBytes = trainer.trainableBytes();
        try {
          trainer.run();
          o.finalLoss = curve.get(curve.size() - 1);
        } catch (TrainingDivergedException e) {
          o.finalLoss = Double.POSITIVE_INFINITY; // a diverged sweep point loses the sweep
          workDone += steps - trainer.step();
        }
      }
      o.trainSeconds = Math.max(1e-9, (System.nanoTime() - start - evalNanos[0]) / 1e9);
      o.curveSteps = curveSteps.stream().mapToLong(Long::longValue).toArray();
      o.curve = curve.stream().mapToDouble(Double::doubleValue).toArray();
      if (withSpectra) {
        spectra(model, o);
      }
    }
    return o;
  }

  private Mlp model(TensorScope scope, Method method) {
    List<Layer> layers = new ArrayList<>();
    LoraConfig lora = LoraConfig.builder().r(config.rank()).alpha(2f * config.rank()).seed(config.seed()).build();
    for (int l = 0; l < task.layers; l++) {
      Tensor w = scope.fromArray(task.backbone[l], task.width, task.width, config.dtype());
      layers.add(method == Method.FULL ? new Linear(w, null, true) : LoraLinear.create(w, null, lora, l));
    }
    return new Mlp(layers);
  }

  /**
   * Linear warm-up, then constant, for every method; ReLoRA adds its re-warm-up after each
   * unload. A decaying (cosine) schedule starves PLoRA's later stages, which keep finding new
   * directions while LoRA has long saturated: with cosine decay to 10% the PLoRA/LoRA gain ratio
   * drops from ~1.55 to ~1.37 on the default task (see README, "What the demo shows").
   */
  private LrSchedule schedule(Method method, double lr, int steps) {
    long warmup = Math.max(1, steps / 20);
    if (method == Method.RELORA) {
      return LrSchedule.jaggedCosine(lr, warmup, steps, lr, config.unloadEvery(), Math.max(1, config.unloadEvery() / 10));
    }
    return LrSchedule.warmupCosine(lr, warmup, steps, lr);
  }

  private PeriodicLoraConfig periodic(Method method) {
    return switch (method) {
      case PLORA_FULL -> PeriodicLoraConfig.full(config.unloadEvery());
      case PLORA_MOMENTUM -> PeriodicLoraConfig.momentum(config.momentumEvery(), config.momentum());
      case RELORA -> PeriodicLoraConfig.relora(config.unloadEvery(), 0.99);
      default -> null;
    };
  }

  /** Mean MSE over the validation set, in batches of the training batch size (eval mode). */
  private double validationLoss(Mlp model) {
    model.train(false);
    int chunks = task.valX.rows() / config.batch();
    double sum = 0;
    for (int c = 0; c < chunks; c++) {
      Tensor x = task.valX.rowsView(c * config.batch(), config.batch());
      Tensor y = task.valY.rowsView(c * config.batch(), config.batch());
      sum += backend.mse(model.forward(x), y, null);
    }
    model.train(true);
    return sum / chunks;
  }

  /** ΔW = W_final − W₀ per layer (for adapters W_final includes s·B·A): its ranks, and layer 0's spectrum. */
  private void spectra(Mlp model, Outcome o) {
    double erank = 0, above = 0;
    for (int l = 0; l < task.layers; l++) {
      Layer layer = model.layers().get(l);
      float[] w;
      if (layer instanceof LoraLinear lora) {
        try (Tensor effective = lora.effectiveWeight()) {
          w = effective.toFloatArray();
        }
      } else {
        w = ((Linear) layer).weight().toFloatArray();
      }
      double[] dw = new double[w.length];
      for (int i = 0; i < w.length; i++) {
        dw[i] = (double) w[i] - config.dtype().round(task.backbone[l][i]);
      }
      double[] sv = Svd.singularValues(dw, task.width, task.width);
      erank += Spectrum.effectiveRank(sv);
      above += Spectrum.rankAbove(sv, 0.01);
      if (l == 0) {
        o.spectrum = sv;
      }
    }
    o.effectiveRank = erank / task.layers;
    o.rankAbove1pct = above / task.layers;
  }
}
