package dev.plora.finetune;

import dev.plora.backend.Backend;
import dev.plora.backend.Backends;
import dev.plora.data.Batch;
import dev.plora.data.Example;
import dev.plora.io.AtomicFiles;
import dev.plora.io.HfCheckpoint;
import dev.plora.io.HfModelFolder;
import dev.plora.io.Json;
import dev.plora.io.Safetensors;
import dev.plora.lora.Lora;
import dev.plora.lora.LoraAdapter;
import dev.plora.lora.LoraConfig;
import dev.plora.model.TokenBatch;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.plora.PeriodicLoraConfig;
import dev.plora.train.Checkpoints;
import dev.plora.train.TrainListener;
import dev.plora.train.Trainer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fine-tunes a Hugging Face model folder with LoRA, PLoRA, ReLoRA or full fine-tuning, and writes
 * what the rest of a stack loads: a PEFT adapter (LoRA) or the merged model in the HF layout (the
 * others, whose update is not low-rank), optionally with a rank-R adapter fitted to the update;
 * plus checkpoints to resume from and {@code run.json} with every setting and result.
 *
 * <pre>{@code
 * FineTuneResult r = FineTune.builder(settings).train(batches).eval(examples).build().run();
 * }</pre>
 */
public final class FineTune {
  private static final Logger LOG = LoggerFactory.getLogger(FineTune.class);
  /** The output folder's run record and checkpoint folder. */
  public static final String RUN_JSON = "run.json", CHECKPOINTS = "checkpoints";

  /** Hears a run's progress: the Trainer's events plus evaluations. Calls come on the training thread. */
  public interface Listener extends TrainListener {
    /** After an evaluation; {@code step} counts the optimizer steps done. */
    default void onEval(long step, Evaluation.Result result) {}
  }

  private final FineTuneSettings settings;
  private final Trainer.BatchSource<Batch> batches;
  private final List<Example> evalExamples;
  private final List<TrainListener> listeners;

  private FineTune(Builder b) {
    this.settings = b.settings;
    this.batches = b.batches;
    this.evalExamples = List.copyOf(b.evalExamples);
    this.listeners = List.copyOf(b.listeners);
  }

  public static Builder builder(FineTuneSettings settings) {
    return new Builder(settings);
  }

  public FineTuneSettings settings() {
    return settings;
  }

  /**
   * Trains, evaluates and writes the outputs. On failure {@code run.json} records the error and
   * the checkpoints written so far stay, so that the run can resume.
   */
  public FineTuneResult run() throws IOException {
    FineTuneSettings s = settings;
    prepareOutput();
    FineTuneResult.Recorder record = new FineTuneResult.Recorder(s);
    try (Backend backend = s.backend() == null ? Backends.create() : Backends.create(s.backend());
        LlamaForCausalLM model = LlamaForCausalLM.load(backend, s.model(), s.dtypeFor(backend),
            s.method() == Method.FULL)) {
      model.checkpointLayers(s.checkpointLayers());
      Map<String, LoraAdapter> adapters = s.method().usesAdapters() ? Lora.inject(model, s.lora()) : Map.of();
      long[] tokens = new long[1];
      Trainer.Builder<Batch> tb = Trainer.<Batch>builder(backend)
          .lossFunction(docs -> {
            try (TokenBatch batch = docs.pack(backend)) {
              tokens[0] += batch.tokens();
              return model.forward(batch, true).loss();
            }
          })
          .batches(batches).adapters(adapters).optimizer(s.optimizer()).schedule(s.schedule())
          .steps(s.steps()).gradientAccumulation(s.gradientAccumulation()).maxGradNorm(s.maxGradNorm())
          .checkpoints(s.out().resolve(CHECKPOINTS), s.saveEvery(), s.keepCheckpoints());
      if (s.method() == Method.FULL) {
        tb.parameters(model.parameters());
      }
      PeriodicLoraConfig periodic = s.periodic();
      if (periodic != null) {
        tb.periodic(periodic);
      }
      tb.listener(new TrainListener() {
        @Override
        public void onStep(StepEvent e) {
          record.step(e, tokens[0]);
          long done = e.step() + 1;
          if (!evalExamples.isEmpty() && s.evalEvery() > 0 && done % s.evalEvery() == 0 && done < s.steps()) {
            evaluate(model, done, record);
          }
        }
      });
      for (TrainListener l : listeners) {
        tb.listener(l);
      }
      try (Trainer<Batch> trainer = tb.build()) {
        record.trainableBytes(trainer.trainableBytes());
        if (s.resume()) {
          Path latest = Checkpoints.latest(s.out().resolve(CHECKPOINTS)).orElseThrow();
          trainer.loadCheckpoint(latest);
          record.resumedFrom(trainer.step());
          LOG.info("resumed from {} at step {}", latest, trainer.step());
        }
        Trainer.Result r = trainer.run();
        record.finished(r);
      }
      if (!evalExamples.isEmpty()) {
        evaluate(model, s.steps(), record);
      }
      writeOutputs(model, adapters, record);
      FineTuneResult result = record.result();
      writeRunJson(result.toJson());
      return result;
    } catch (IOException | RuntimeException | Error e) {
      try {
        writeRunJson(record.failed(e));
      } catch (IOException | RuntimeException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  private void evaluate(LlamaForCausalLM model, long step, FineTuneResult.Recorder record) {
    Evaluation.Result r = Evaluation.evaluate(model, evalExamples);
    record.eval(step, r);
    LOG.info(String.format(java.util.Locale.ROOT, "eval after step %d: loss %.6g perplexity %.6g over %d tokens",
        step, r.loss(), r.perplexity(), r.tokens()));
    for (TrainListener l : listeners) {
      if (l instanceof Listener heard) {
        heard.onEval(step, r);
      }
    }
  }

  /**
   * Checks, writing nothing, that {@code out} can take a run: a fresh run wants it absent or empty
   * (or {@code force}), in a place where a folder can be made; a resumed one wants its checkpoints.
   */
  public static void checkOutput(Path out, boolean force, boolean resume) throws IOException {
    Path checkpoints = out.resolve(CHECKPOINTS);
    if (resume) {
      if (!Files.isDirectory(out) || Checkpoints.latest(checkpoints).isEmpty()) {
        throw new IllegalArgumentException("resume: " + checkpoints + " has no checkpoint to resume from");
      }
      return;
    }
    if (Files.exists(out) && !Files.isDirectory(out)) {
      throw new IllegalArgumentException("out: " + out + " exists and is not a folder");
    }
    if (Files.isDirectory(out) && !isEmpty(out) && !force) {
      throw new IllegalArgumentException("out: " + out + " exists and is not empty (force, --force on the command line, replaces its outputs)");
    }
    Path existing = out.toAbsolutePath();
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    if (existing == null || !Files.isDirectory(existing) || !Files.isWritable(existing)) {
      throw new IllegalArgumentException("out: cannot write " + out + ": " + existing + " is not a writable folder");
    }
  }

  /** {@link #checkOutput}, then the folder made; a forced fresh run drops old checkpoints, which would be resumed. */
  private void prepareOutput() throws IOException {
    checkOutput(settings.out(), settings.force(), settings.resume());
    if (!settings.resume()) {
      for (Path old : Checkpoints.list(settings.out().resolve(CHECKPOINTS))) {
        Files.delete(old);
      }
    }
    Files.createDirectories(settings.out());
    AtomicFiles.requireWritable(settings.out().resolve(RUN_JSON), true);
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (var entries = Files.list(dir)) {
      return entries.findAny().isEmpty();
    }
  }

  private void writeOutputs(LlamaForCausalLM model, Map<String, LoraAdapter> adapters,
      FineTuneResult.Recorder record) throws IOException {
    FineTuneSettings s = settings;
    if (!s.method().mergedOutput()) {
      PeftAdapterOutput.save(s, model, adapters);
      record.output("adapter", s.out());
      return;
    }
    Map<String, List<String>> shards;
    Safetensors.Dtype dtype;
    try (HfCheckpoint input = HfCheckpoint.open(s.model())) {
      shards = input.shards();
      dtype = input.entry(shards.values().iterator().next().get(0)).dtype();
    }
    model.saveMerged(s.out(), shards, dtype, true);
    HfModelFolder.copyCompanionFiles(s.model(), s.out(), dtype);
    record.output("merged", s.out());
    if (s.exportRank() > 0) {
      Path dir = s.out().resolve("adapter-rank-" + s.exportRank());
      Map<String, Double> errors = PeftAdapterOutput.fitToUpdate(s, model, dir);
      record.output("export_rank_adapter", dir);
      record.exportErrors(errors);
    }
  }

  private void writeRunJson(Map<String, Object> json) throws IOException {
    Path file = settings.out().resolve(RUN_JSON);
    if (Files.isDirectory(settings.out())) {
      AtomicFiles.write(file, (Json.write(json, 2) + "\n").getBytes(StandardCharsets.UTF_8), true);
    }
  }

  /** Data and listeners for a run; the settings are checked when they are made. */
  public static final class Builder {
    private final FineTuneSettings settings;
    private Trainer.BatchSource<Batch> batches;
    private List<Example> evalExamples = List.of();
    private final List<TrainListener> listeners = new ArrayList<>();

    private Builder(FineTuneSettings settings) {
      if (settings == null) {
        throw new IllegalArgumentException("settings: must not be null");
      }
      this.settings = settings;
    }

    /**
     * The documents of micro-batch {@code micro} of step {@code step}: a pure function of the two,
     * so that a resumed run sees the data the uninterrupted one saw ({@link
     * dev.plora.data.Batches#source} is one).
     */
    public Builder train(Trainer.BatchSource<Batch> batches) {
      this.batches = batches;
      return this;
    }

    /** Examples evaluated every {@code evalEvery} steps and at the end (none: no evaluation). */
    public Builder eval(List<Example> examples) {
      if (examples == null) {
        throw new IllegalArgumentException("eval: expected a list of examples (may be empty), got null");
      }
      this.evalExamples = examples;
      return this;
    }

    /** Hears every step and unload; a {@link Listener} hears the evaluations too. */
    public Builder listener(TrainListener listener) {
      if (listener == null) {
        throw new IllegalArgumentException("listener: must not be null");
      }
      listeners.add(listener);
      return this;
    }

    public FineTune build() {
      if (batches == null) {
        throw new IllegalArgumentException("train: the training batches must be set");
      }
      return new FineTune(this);
    }
  }

  /** The latest checkpoint of a run's output folder, if any. */
  public static Optional<Path> latestCheckpoint(Path out) {
    try {
      return Checkpoints.latest(out.resolve(CHECKPOINTS));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static Map<String, Object> map(Object... kv) {
    Map<String, Object> m = new LinkedHashMap<>();
    for (int i = 0; i < kv.length; i += 2) {
      m.put((String) kv[i], kv[i + 1]);
    }
    return m;
  }
}
