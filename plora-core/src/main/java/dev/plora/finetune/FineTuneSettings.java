package dev.plora.finetune;

import dev.plora.backend.Backend;
import dev.plora.lora.LoraConfig;
import dev.plora.optim.AdamW;
import dev.plora.optim.LrSchedule;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.tensor.DType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Every setting of a fine-tuning run, checked as a whole when built (each problem named with the
 * setting, what was expected and what was given) and written to run.json as given. Defaults
 * follow PEFT and Hugging Face's Trainer where users know them: r 8, lora_alpha 16, no dropout,
 * every linear projection targeted, linear decay, max grad norm 1, seed 42.
 */
public record FineTuneSettings(
    Path model, Path out, boolean force, boolean resume,
    Method method, LoraConfig lora, int unloadEvery, float momentum, double pruneRatio,
    double lr, String scheduleName, long warmup, double weightDecay, double maxGradNorm,
    long steps, int gradientAccumulation, DType dtype, String backend, long seed,
    int evalEvery, int saveEvery, int keepCheckpoints, boolean checkpointLayers, int exportRank,
    Map<String, Object> data) {

  /** The schedules by name. */
  public static final List<String> SCHEDULES = List.of("constant", "linear", "cosine");

  public static Builder builder(Path model, Path out) {
    return new Builder(model, out);
  }

  /** The compute dtype on {@code backend}: as set, else {@link #defaultDtype}. */
  public DType dtypeFor(Backend backend) {
    return dtype != null ? dtype : defaultDtype(backend);
  }

  /** F32 on the CPU, BF16 on a GPU. */
  public static DType defaultDtype(Backend backend) {
    return backend.device() == dev.plora.tensor.Device.CUDA ? DType.BF16 : DType.F32;
  }

  /** How adapters unload, or null for LoRA and full fine-tuning. */
  public PeriodicLoraConfig periodic() {
    return switch (method) {
      case PLORA -> momentum > 0 ? PeriodicLoraConfig.momentum(unloadEvery, momentum)
          : PeriodicLoraConfig.full(unloadEvery);
      case RELORA -> PeriodicLoraConfig.relora(unloadEvery, pruneRatio);
      default -> null;
    };
  }

  /** The learning rate by step; ReLoRA's jagged cosine re-warms for a tenth of each stage. */
  public LrSchedule schedule() {
    if (method == Method.RELORA) {
      return LrSchedule.jaggedCosine(lr, warmup, steps, 0, unloadEvery, Math.max(1, unloadEvery / 10));
    }
    return switch (scheduleName) {
      case "constant" -> warmup == 0 ? LrSchedule.constant(lr) : LrSchedule.warmupCosine(lr, warmup, warmup, lr);
      case "linear" -> LrSchedule.warmupLinear(lr, warmup, steps);
      default -> LrSchedule.warmupCosine(lr, warmup, steps, 0);
    };
  }

  public AdamW.Config optimizer() {
    return AdamW.Config.DEFAULT.withWeightDecay((float) weightDecay);
  }

  /** The settings as run.json records them. */
  public Map<String, Object> toJson() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("model", model.toString());
    m.put("out", out.toString());
    m.put("method", method.cliName());
    if (method.usesAdapters()) {
      m.put("r", lora.r());
      m.put("lora_alpha", (double) lora.alpha());
      m.put("lora_dropout", (double) lora.dropout());
      m.put("target_modules", lora.targetModules());
      m.put("use_rslora", lora.rsLora());
    }
    if (method == Method.PLORA || method == Method.RELORA) {
      m.put("unload_every", unloadEvery);
    }
    if (method == Method.PLORA) {
      m.put("momentum", (double) momentum);
    }
    if (method == Method.RELORA) {
      m.put("prune_ratio", pruneRatio);
    }
    m.put("lr", lr);
    m.put("schedule", method == Method.RELORA ? "jagged-cosine" : scheduleName);
    m.put("warmup", warmup);
    m.put("weight_decay", weightDecay);
    m.put("max_grad_norm", maxGradNorm);
    m.put("steps", steps);
    m.put("grad_accum", gradientAccumulation);
    m.put("dtype", dtype == null ? "auto" : dtype.name().toLowerCase(Locale.ROOT));
    m.put("backend", backend == null ? "default" : backend);
    m.put("seed", seed);
    m.put("eval_every", evalEvery);
    m.put("save_every", saveEvery);
    m.put("keep", keepCheckpoints);
    m.put("checkpoint_layers", checkpointLayers);
    if (exportRank > 0) {
      m.put("export_rank", exportRank);
    }
    m.put("resume", resume);
    m.put("data", data);
    return m;
  }

  /** Settings with defaults; {@link #build} checks them all at once. */
  public static final class Builder {
    private final Path model, out;
    private boolean force, resume;
    private Method method = Method.LORA;
    private int r = 8;
    private float alpha = 16, dropout = 0, momentum = 0;
    private boolean rsLora;
    private List<String> targetModules = List.of(LoraConfig.ALL_LINEAR);
    private int unloadEvery = 100;
    private double pruneRatio = 0.9;
    private Double lr;
    private String schedule = "linear";
    private long warmup, steps = -1;
    private double weightDecay = 0, maxGradNorm = 1;
    private int gradientAccumulation = 1;
    private DType dtype;
    private String backend;
    private long seed = 42;
    private int evalEvery, saveEvery = 500, keep = 2, exportRank;
    private boolean checkpointLayers;
    private Map<String, Object> data = Map.of();

    private Builder(Path model, Path out) {
      this.model = model;
      this.out = out;
    }

    public Builder force(boolean force) { this.force = force; return this; }
    public Builder resume(boolean resume) { this.resume = resume; return this; }
    public Builder method(Method method) { this.method = method; return this; }
    public Builder r(int r) { this.r = r; return this; }
    public Builder alpha(float alpha) { this.alpha = alpha; return this; }
    public Builder dropout(float dropout) { this.dropout = dropout; return this; }
    public Builder rsLora(boolean rsLora) { this.rsLora = rsLora; return this; }
    public Builder targetModules(List<String> modules) { this.targetModules = modules; return this; }
    /** PLoRA and ReLoRA: optimizer steps between unloads. */
    public Builder unloadEvery(int steps) { this.unloadEvery = steps; return this; }
    /** PLoRA: the fraction unloaded at each unload; 0 unloads all (PLoRA-FULL). */
    public Builder momentum(float m) { this.momentum = m; return this; }
    /** ReLoRA: the fraction of optimizer moments pruned at each unload. */
    public Builder pruneRatio(double ratio) { this.pruneRatio = ratio; return this; }
    /** The peak learning rate; default 2e-4 with adapters, 2e-5 for full fine-tuning. */
    public Builder lr(double lr) { this.lr = lr; return this; }
    public Builder schedule(String name) { this.schedule = name; return this; }
    public Builder warmup(long steps) { this.warmup = steps; return this; }
    public Builder weightDecay(double wd) { this.weightDecay = wd; return this; }
    /** Clip the gradient norm to this (0: no clipping). */
    public Builder maxGradNorm(double norm) { this.maxGradNorm = norm; return this; }
    public Builder steps(long steps) { this.steps = steps; return this; }
    public Builder gradientAccumulation(int microBatches) { this.gradientAccumulation = microBatches; return this; }
    /** The compute dtype; null: F32 on the CPU, BF16 on a GPU. */
    public Builder dtype(DType dtype) { this.dtype = dtype; return this; }
    /** "cpu" or "cuda"; null: the default backend. */
    public Builder backend(String name) { this.backend = name; return this; }
    public Builder seed(long seed) { this.seed = seed; return this; }
    /** Evaluate every this many steps (0: only at the end). */
    public Builder evalEvery(int steps) { this.evalEvery = steps; return this; }
    /** Checkpoint every this many steps (and at the end), keeping the last {@code keep}. */
    public Builder saveEvery(int steps, int keep) { this.saveEvery = steps; this.keep = keep; return this; }
    /** Recompute each decoder layer in backward instead of keeping its activations. */
    public Builder checkpointLayers(boolean on) { this.checkpointLayers = on; return this; }
    /** Merged methods: also fit a rank-R PEFT adapter to the accumulated update (0: none). */
    public Builder exportRank(int rank) { this.exportRank = rank; return this; }
    /** What the data were (files, formats, counts), recorded in run.json as given. */
    public Builder data(Map<String, Object> description) { this.data = description; return this; }

    public FineTuneSettings build() {
      List<String> problems = new ArrayList<>();
      if (model == null) {
        problems.add("model: expected a model folder, got null");
      }
      if (out == null) {
        problems.add("out: expected an output folder, got null");
      }
      if (method == null) {
        problems.add("method: expected lora, plora, relora or full, got null");
      }
      if (steps < 1) {
        problems.add("steps: expected >= 1, got " + steps);
      }
      double rate = lr != null ? lr : method == Method.FULL ? 2e-5 : 2e-4;
      if (!(rate > 0) || Double.isInfinite(rate)) {
        problems.add("lr: expected a finite learning rate > 0, got " + rate);
      }
      if (!SCHEDULES.contains(schedule)) {
        problems.add("schedule: expected one of " + SCHEDULES + ", got '" + schedule + "'");
      }
      if (warmup < 0 || (steps >= 1 && warmup > steps)) {
        problems.add("warmup: expected 0..steps (" + steps + "), got " + warmup);
      }
      if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
        problems.add("weight_decay: expected a finite value >= 0, got " + weightDecay);
      }
      if (!(maxGradNorm >= 0) || Double.isInfinite(maxGradNorm)) {
        problems.add("max_grad_norm: expected a finite value >= 0 (0: no clipping), got " + maxGradNorm);
      }
      if (gradientAccumulation < 1) {
        problems.add("grad_accum: expected >= 1, got " + gradientAccumulation);
      }
      if (dtype != null && !dtype.isFloat()) {
        problems.add("dtype: expected f32, bf16 or f16, got " + dtype);
      }
      if (evalEvery < 0) {
        problems.add("eval_every: expected >= 0 (0: only at the end), got " + evalEvery);
      }
      if (saveEvery < 1 || keep < 1) {
        problems.add("save_every and keep: expected >= 1 each, got " + saveEvery + " and " + keep);
      }
      if (exportRank < 0 || (exportRank > 0 && method != null && !method.mergedOutput())) {
        problems.add("export_rank: expected 0, or >= 1 with plora, relora or full (LoRA's adapter is already "
            + "low-rank), got " + exportRank + " with " + (method == null ? "no method" : method.cliName()));
      }
      if (method == Method.PLORA || method == Method.RELORA) {
        if (unloadEvery < 1) {
          problems.add("unload_every: expected >= 1 step, got " + unloadEvery);
        }
      }
      if (!(momentum >= 0 && momentum < 1)) {
        problems.add("momentum: expected 0 (unload all) or a fraction in (0, 1), got " + momentum);
      } else if (momentum > 0 && method != Method.PLORA) {
        problems.add("momentum: only PLoRA unloads a fraction, but the method is " + method.cliName());
      }
      if (!(pruneRatio >= 0 && pruneRatio <= 1)) {
        problems.add("prune_ratio: expected a fraction in [0, 1], got " + pruneRatio);
      }
      LoraConfig lora = null; // full fine-tuning uses its targets for export_rank only
      {
        try {
          lora = LoraConfig.builder().r(r).alpha(alpha).dropout(dropout).rsLora(rsLora)
              .targetModules(targetModules == null ? List.of() : targetModules).seed(seed).build();
        } catch (IllegalArgumentException e) {
          problems.add(e.getMessage());
        }
      }
      if (!problems.isEmpty()) {
        throw new IllegalArgumentException(String.join("; ", problems));
      }
      return new FineTuneSettings(model, out, force, resume, method, lora, unloadEvery, momentum, pruneRatio, rate,
          schedule, warmup, weightDecay, maxGradNorm, steps, gradientAccumulation, dtype, backend, seed, evalEvery,
          saveEvery, keep, checkpointLayers, exportRank, java.util.Collections.unmodifiableMap(new LinkedHashMap<>(data)));
    }
  }
}
