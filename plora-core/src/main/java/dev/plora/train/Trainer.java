package dev.plora.train;

import dev.plora.backend.Backend;
import dev.plora.lora.LoraAdapter;
import dev.plora.optim.AdamW;
import dev.plora.optim.LrSchedule;
import dev.plora.optim.Parameter;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.plora.Unloader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The training loop for models that users write. Per step: zero the gradients, run the user's
 * forward + loss + backward over {@code gradientAccumulation} micro-batches, check that loss and
 * gradients are finite, clip by global norm, one fused AdamW step with the schedule's learning
 * rate, and — with a {@link PeriodicLoraConfig} — unload the adapters at the end of each stage.
 * All of it works in place: with a model whose buffers come from an
 * {@link dev.plora.model.ActivationPlan} (as {@link dev.plora.model.Mlp}'s do), a step after the
 * first allocates no native memory.
 *
 * <pre>{@code
 * try (Trainer<Batch> trainer = Trainer.<Batch>builder(backend)
 *     .lossFunction(batch -> model.forwardBackward(batch))   // returns the batch's loss
 *     .batches((step, micro) -> data.batch(step, micro))
 *     .adapters(Lora.adapters(model))
 *     .steps(1000).schedule(LrSchedule.warmupCosine(2e-3, 50, 1000, 0))
 *     .periodic(PeriodicLoraConfig.momentum(1, 0.1f))
 *     .build()) {
 *   trainer.run();
 * }
 * }</pre>
 */
public final class Trainer<B> implements AutoCloseable {
  /** Forward + loss + backward over one batch; accumulates gradients and returns the loss. */
  @FunctionalInterface
  public interface LossFunction<B> {
    double forwardBackward(B batch);
  }

  /** The micro-batch {@code micro} of step {@code step}, deterministic so that runs replay. */
  @FunctionalInterface
  public interface BatchSource<B> {
    B batch(long step, int micro);
  }

  /** What a finished run did. */
  public record Result(long steps, double finalLoss, double seconds, long unloads) {}

  private final Backend backend;
  private final LossFunction<B> lossFunction;
  private final BatchSource<B> batches;
  private final Map<String, LoraAdapter> adapters;
  private final List<Parameter> parameters;
  private final AdamW optimizer;
  private final LrSchedule schedule;
  private final long steps;
  private final int accumulation;
  private final double maxGradNorm;
  private final Unloader unloader;
  private final List<TrainListener> listeners;
  private final Path checkpointDir;
  private final int checkpointEvery;
  private final int keepCheckpoints;
  private long step;
  private double lastLr; // of the last step, for the listeners
  private double lastGradNorm;

  private Trainer(Builder<B> b) {
    this.backend = b.backend;
    this.lossFunction = b.lossFunction;
    this.batches = b.batches;
    this.adapters = Collections.unmodifiableMap(new LinkedHashMap<>(b.adapters));
    this.parameters = List.copyOf(b.parameters);
    this.schedule = b.schedule;
    this.steps = b.steps;
    this.accumulation = b.accumulation;
    this.maxGradNorm = b.maxGradNorm;
    this.unloader = b.periodic == null ? null : new Unloader(b.periodic);
    this.listeners = List.copyOf(b.listeners);
    this.checkpointDir = b.checkpointDir;
    this.checkpointEvery = b.checkpointEvery;
    this.keepCheckpoints = b.keepCheckpoints;
    this.optimizer = new AdamW(backend, parameters, b.optimizer);
  }

  public static <B> Builder<B> builder(Backend backend) {
    return new Builder<>(backend);
  }

  public AdamW optimizer() {
    return optimizer;
  }

  /** Steps completed. */
  public long step() {
    return step;
  }

  /** Bytes of trainable state: parameters, their gradients and the optimizer's moments. */
  public long trainableBytes() {
    long bytes = optimizer.stateBytes();
    for (Parameter p : parameters) {
      bytes += p.bytes();
    }
    return bytes;
  }

  /** Writes the run's full state to {@code file}, atomically. */
  public void saveCheckpoint(Path file) {
    try {
      Checkpoints.save(file, step, parameters, optimizer, adapters, unloader);
    } catch (IOException e) {
      throw new UncheckedIOException("saving checkpoint " + file, e);
    }
  }

  /**
   * Restores a state saved by {@link #saveCheckpoint} (or by the builder's {@code checkpoints}):
   * weights, adapters, optimizer moments, the step and every random-stream counter. The model and
   * the trainer must be set up as for the run that saved it: a file that is not a checkpoint, is
   * corrupt (its CRC-32C checksums fail) or holds another model's state (a parameter, dtype, shape
   * or counter that does not fit) is refused with {@link CheckpointFormatException}, naming the
   * file and the field, before anything is written.
   */
  public void loadCheckpoint(Path file) {
    try {
      step = Checkpoints.load(file, parameters, optimizer, adapters, unloader);
    } catch (IOException e) {
      throw new UncheckedIOException("loading checkpoint " + file, e);
    }
  }

  /** Runs the remaining steps and returns what happened. */
  public Result run() {
    long start = System.nanoTime();
    long first = step;
    double loss = Double.NaN;
    while (step < steps) {
      loss = runStep();
      double elapsed = (System.nanoTime() - start) / 1e9;
      double rate = elapsed > 0 ? (step - first) / elapsed : 0;
      for (TrainListener l : listeners) {
        l.onStep(new TrainListener.StepEvent(step - 1, steps, loss, lastLr, lastGradNorm, rate));
      }
      if (checkpointDir != null && (step % checkpointEvery == 0 || step == steps)) {
        saveCheckpoint(Checkpoints.fileFor(checkpointDir, step));
        try {
          Checkpoints.prune(checkpointDir, keepCheckpoints);
        } catch (IOException e) {
          throw new UncheckedIOException("pruning old checkpoints in " + checkpointDir, e);
        }
      }
    }
    return new Result(step, loss, (System.nanoTime() - start) / 1e9, unloader == null ? 0 : unloader.unloads());
  }

  private double runStep() {
    for (Parameter p : parameters) {
      p.grad().fill(0f);
    }
    double loss = 0;
    for (int micro = 0; micro < accumulation; micro++) {
      loss += lossFunction.forwardBackward(batches.batch(step, micro));
    }
    loss /= accumulation;
    if (!Double.isFinite(loss)) {
      throw new TrainingDivergedException(step, "the loss is " + loss);
    }
    // one native call for all gradients: on a GPU, one wait instead of one per parameter
    double sum = optimizer.gradientSumSquares();
    double gradNorm = Math.sqrt(sum) / accumulation;
    if (!Double.isFinite(gradNorm)) {
      throw new TrainingDivergedException(step, "the gradient norm is " + gradNorm);
    }
    double scale = 1.0 / accumulation;
    if (maxGradNorm > 0 && gradNorm > maxGradNorm) {
      scale *= maxGradNorm / (gradNorm + 1e-6); // PyTorch's clip_grad_norm_
    }
    double lr = schedule.lr(step);
    optimizer.step((float) lr, (float) scale, sum);  // the gradients are not read again
    lastLr = lr;
    lastGradNorm = gradNorm;
    step++;
    if (unloader != null && unloader.isDue(step)) {
      unloader.unload(List.copyOf(adapters.values()), optimizer);
      for (TrainListener l : listeners) {
        l.onUnload(new TrainListener.UnloadEvent(step - 1, unloader.unloads(), unloader.config().policy().toString()));
      }
    }
    return loss;
  }

  /** Closes the optimizer state (the model belongs to the caller). */
  @Override
  public void close() {
    optimizer.close();
  }

  public static final class Builder<B> {
    private final Backend backend;
    private LossFunction<B> lossFunction;
    private BatchSource<B> batches;
    private Map<String, LoraAdapter> adapters = Map.of();
    private List<Parameter> parameters;
    private AdamW.Config optimizer = AdamW.Config.DEFAULT;
    private LrSchedule schedule = LrSchedule.constant(1e-3);
    private long steps = 100;
    private int accumulation = 1;
    private double maxGradNorm = 1.0;
    private PeriodicLoraConfig periodic;
    private final List<TrainListener> listeners = new ArrayList<>();
    private Path checkpointDir;
    private int checkpointEvery;
    private int keepCheckpoints;

    private Builder(Backend backend) {
      this.backend = backend;
    }

    public Builder<B> lossFunction(LossFunction<B> f) {
      this.lossFunction = f;
      return this;
    }

    public Builder<B> batches(BatchSource<B> source) {
      this.batches = source;
      return this;
    }

    /**
     * The LoRA adapters by module path ({@link dev.plora.lora.Lora#inject} returns them,
     * {@link dev.plora.lora.Lora#adapters} finds them); their A and B are the parameters unless
     * {@link #parameters} says otherwise, and checkpoints key them by path.
     */
    public Builder<B> adapters(Map<String, LoraAdapter> adapters) {
      this.adapters = adapters;
      return this;
    }

    /** The trainable parameters (e.g. all weights, for full fine-tuning). */
    public Builder<B> parameters(List<Parameter> parameters) {
      this.parameters = parameters;
      return this;
    }

    public Builder<B> optimizer(AdamW.Config config) {
      this.optimizer = config;
      return this;
    }

    public Builder<B> schedule(LrSchedule schedule) {
      this.schedule = schedule;
      return this;
    }

    public Builder<B> steps(long steps) {
      this.steps = steps;
      return this;
    }

    public Builder<B> gradientAccumulation(int microBatches) {
      this.accumulation = microBatches;
      return this;
    }

    /** Global-norm clipping threshold; 0 turns clipping off. Default 1.0. */
    public Builder<B> maxGradNorm(double norm) {
      this.maxGradNorm = norm;
      return this;
    }

    /** PLoRA unloading; null (the default) is plain LoRA. */
    public Builder<B> periodic(PeriodicLoraConfig config) {
      this.periodic = config;
      return this;
    }

    public Builder<B> listener(TrainListener listener) {
      this.listeners.add(listener);
      return this;
    }

    /**
     * Saves a checkpoint into {@code dir} every {@code every} steps and at the end, keeping the
     * newest {@code keepLast}; resume with {@link Trainer#loadCheckpoint} and
     * {@link Checkpoints#latest}.
     */
    public Builder<B> checkpoints(Path dir, int every, int keepLast) {
      this.checkpointDir = dir;
      this.checkpointEvery = every;
      this.keepCheckpoints = keepLast;
      return this;
    }

    public Trainer<B> build() {
      List<String> problems = new ArrayList<>();
      if (backend == null) {
        problems.add("backend: must not be null");
      }
      if (lossFunction == null) {
        problems.add("lossFunction: must be set");
      }
      if (batches == null) {
        problems.add("batches: must be set");
      }
      if (adapters == null) {
        problems.add("adapters: must not be null");
      }
      if (schedule == null) {
        problems.add("schedule: must not be null");
      }
      if (optimizer == null) {
        problems.add("optimizer: must not be null");
      }
      if (steps < 1) {
        problems.add("steps: expected >= 1, got " + steps);
      }
      if (accumulation < 1) {
        problems.add("gradientAccumulation: expected >= 1, got " + accumulation);
      }
      if (!(maxGradNorm >= 0) || Double.isInfinite(maxGradNorm)) {
        problems.add("maxGradNorm: expected a finite value >= 0, got " + maxGradNorm);
      }
      if (checkpointDir != null && (checkpointEvery < 1 || keepCheckpoints < 1)) {
        problems.add("checkpoints: expected every >= 1 and keepLast >= 1, got " + checkpointEvery + ", "
            + keepCheckpoints);
      }
      if (periodic != null && (adapters == null || adapters.isEmpty())) {
        problems.add("periodic: PLoRA unloading needs the LoRA adapters (adapters)");
      }
      if (parameters == null && adapters != null) {
        parameters = new ArrayList<>();
        adapters.values().forEach(l -> parameters.addAll(l.parameters()));
      }
      if (parameters != null && parameters.isEmpty()) {
        problems.add("parameters: nothing to train (no LoRA layers and no parameters given)");
      }
      if (!problems.isEmpty()) {
        throw new IllegalArgumentException("invalid Trainer: " + String.join("; ", problems));
      }
      return new Trainer<>(this);
    }
  }
}
