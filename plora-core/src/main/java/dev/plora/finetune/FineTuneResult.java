package dev.plora.finetune;

import dev.plora.Version;
import dev.plora.train.TrainListener;
import dev.plora.train.Trainer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a fine-tuning run did: its settings, the loss of every step, the evaluations, throughput,
 * the outputs written and, for a rank-R export, each module's relative error. {@link #toJson} is
 * run.json.
 */
public record FineTuneResult(FineTuneSettings settings, long steps, long resumedFrom, double finalLoss,
    double seconds, long tokens, long unloads, long trainableBytes, List<StepLoss> losses, List<Eval> evals,
    Map<String, Path> outputs, Map<String, Double> exportErrors) {

  /** One optimizer step: its 1-based number, mean loss and learning rate. */
  public record StepLoss(long step, double loss, double lr) {}

  /** An evaluation after {@code step} optimizer steps. */
  public record Eval(long step, Evaluation.Result result) {}

  /** The last evaluation (after the last step), if the run had eval data. */
  public Evaluation.Result finalEval() {
    return evals.isEmpty() ? null : evals.get(evals.size() - 1).result();
  }

  /** Training tokens a second over this process's steps. */
  public double tokensPerSecond() {
    return seconds > 0 ? tokens / seconds : 0;
  }

  public Map<String, Object> toJson() {
    Map<String, Object> results = new LinkedHashMap<>();
    results.put("steps", steps);
    if (resumedFrom > 0) {
      results.put("resumed_from_step", resumedFrom);
    }
    results.put("final_train_loss", Evaluation.Result.finite(finalLoss));
    Evaluation.Result last = finalEval();
    if (last != null) {
      results.put("eval_loss", Evaluation.Result.finite(last.loss()));
      results.put("eval_perplexity", Evaluation.Result.finite(last.perplexity()));
      results.put("eval_tokens", last.tokens());
    }
    results.put("seconds", seconds);
    results.put("train_tokens", tokens);
    results.put("tokens_per_second", tokensPerSecond());
    results.put("unloads", unloads);
    results.put("trainable_bytes", trainableBytes);
    Map<String, Object> out = new LinkedHashMap<>();
    outputs.forEach((k, v) -> out.put(k, v.toString()));
    results.put("outputs", out);
    if (!exportErrors.isEmpty()) {
      results.put("export_relative_errors", new LinkedHashMap<>(exportErrors));
    }
    List<Object> steps = new ArrayList<>(), evalList = new ArrayList<>();
    for (StepLoss s : losses) {
      steps.add(List.of(s.step(), Evaluation.Result.finite(s.loss()), s.lr()));
    }
    for (Eval e : evals) {
      evalList.add(FineTune.map("step", e.step(), "loss", Evaluation.Result.finite(e.result().loss()), "perplexity",
          Evaluation.Result.finite(e.result().perplexity()), "tokens", e.result().tokens()));
    }
    return FineTune.map("plora_version", Version.get(), "status", "completed", "settings", settings.toJson(),
        "results", results, "train_loss", FineTune.map("columns", List.of("step", "loss", "lr"), "rows", steps),
        "evals", evalList);
  }

  /** Collects a result while the run goes on. */
  static final class Recorder {
    private final FineTuneSettings settings;
    private final List<StepLoss> losses = new ArrayList<>();
    private final List<Eval> evals = new ArrayList<>();
    private final Map<String, Path> outputs = new LinkedHashMap<>();
    private Map<String, Double> exportErrors = Map.of();
    private long resumedFrom, tokens, trainableBytes;
    private Trainer.Result trainer;

    Recorder(FineTuneSettings settings) {
      this.settings = settings;
    }

    void step(TrainListener.StepEvent e, long tokensSoFar) {
      losses.add(new StepLoss(e.step() + 1, e.loss(), e.lr()));
      tokens = tokensSoFar;
    }

    void eval(long step, Evaluation.Result r) {
      evals.add(new Eval(step, r));
    }

    void resumedFrom(long step) {
      resumedFrom = step;
    }

    void trainableBytes(long bytes) {
      trainableBytes = bytes;
    }

    void finished(Trainer.Result r) {
      trainer = r;
    }

    void output(String kind, Path path) {
      outputs.put(kind, path);
    }

    void exportErrors(Map<String, Double> errors) {
      exportErrors = errors;
    }

    FineTuneResult result() {
      return new FineTuneResult(settings, trainer.steps(), resumedFrom, trainer.finalLoss(), trainer.seconds(), tokens,
          trainer.unloads(), trainableBytes, List.copyOf(losses), List.copyOf(evals), java.util.Collections.unmodifiableMap(outputs),
          exportErrors);
    }

    /** run.json of a run that failed: the settings, how far it got and why it stopped. */
    Map<String, Object> failed(Throwable error) {
      return FineTune.map("plora_version", Version.get(), "status", "failed", "error",
          error.getClass().getSimpleName() + ": " + error.getMessage(), "settings", settings.toJson(),
          "steps_done", losses.isEmpty() ? resumedFrom : losses.get(losses.size() - 1).step(),
          "last_checkpoint", FineTune.latestCheckpoint(settings.out()).map(Path::toString).orElse(null));
    }
  }
}
