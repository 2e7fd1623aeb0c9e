package dev.plora.cli;

import dev.plora.data.Batches;
import dev.plora.data.Dataset;
import dev.plora.finetune.Evaluation;
import dev.plora.finetune.FineTune;
import dev.plora.finetune.FineTuneResult;
import dev.plora.finetune.FineTuneSettings;
import dev.plora.finetune.Method;
import dev.plora.text.Tokenizer;
import dev.plora.train.ProgressBar;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code plora finetune}: a model folder and a JSONL file to a PEFT adapter (LoRA) or a merged
 * model (PLoRA, ReLoRA, full fine-tuning) in {@code --out}, with run.json, loss.png and
 * checkpoints. A thin layer over {@link FineTune}.
 */
@Command(name = "finetune", sortOptions = false, description = {
    "Fine-tune a Hugging Face model folder on a JSONL file with LoRA, PLoRA, ReLoRA or full fine-tuning.",
    "Writes to --out a PEFT adapter (lora) or the merged model in the HF layout (plora, relora, full),",
    "plus run.json (every setting and result), loss.png and checkpoints/ (for --resume)."})
final class FinetuneCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Mixin ModelOptions model;

  @Mixin DataOptions data;

  @Option(names = "--eval", paramLabel = "FILE", description = "Evaluation data (JSONL, same formats).")
  Path eval;

  @Option(names = "--eval-fraction", paramLabel = "F", defaultValue = "0",
      description = "Hold out this fraction of --data for evaluation instead (chosen by --seed; default 0).")
  double evalFraction;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder.")
  Path out;

  @Option(names = "--force", description = "Write into a non-empty --out (replacing its outputs and checkpoints).")
  boolean force;

  @Option(names = "--resume", description = "Continue the run in --out from its latest checkpoint.")
  boolean resume;

  @Option(names = "--method", defaultValue = "lora", description = "lora, plora, relora or full (default lora).")
  String method;

  @Option(names = "--r", defaultValue = "8", description = "LoRA rank (default 8).")
  int r;

  @Option(names = "--alpha", defaultValue = "16", description = "lora_alpha; the scaling is alpha/r (default 16).")
  float alpha;

  @Option(names = "--dropout", defaultValue = "0", description = "LoRA dropout (default 0).")
  float dropout;

  @Option(names = "--target-modules", split = ",", paramLabel = "NAMES", defaultValue = "all-linear",
      description = "Comma-separated module names (q_proj,v_proj,...) or all-linear (default).")
  List<String> targetModules;

  @Option(names = "--rslora", description = "Scale by alpha/sqrt(r) (rank-stabilised LoRA).")
  boolean rsLora;

  @Option(names = "--unload-every", defaultValue = "100", paramLabel = "STEPS",
      description = "plora, relora: steps between unloads into the base (default 100).")
  int unloadEvery;

  @Option(names = "--momentum", defaultValue = "0",
      description = "plora: fraction unloaded each time, the adapter decaying by the rest (default 0: all).")
  float momentum;

  @Option(names = "--prune-ratio", defaultValue = "0.9",
      description = "relora: fraction of optimizer moments pruned at each unload (default 0.9).")
  double pruneRatio;

  @Option(names = "--lr", description = "Peak learning rate (default 2e-4; 2e-5 for full).")
  Double lr;

  @Option(names = "--schedule", defaultValue = "linear", description = "constant, linear or cosine (default linear).")
  String schedule;

  @Option(names = "--warmup", defaultValue = "0", paramLabel = "STEPS", description = "Warm-up steps (default 0).")
  long warmup;

  @Option(names = "--weight-decay", defaultValue = "0", description = "AdamW weight decay (default 0).")
  double weightDecay;

  @Option(names = "--max-grad-norm", defaultValue = "1", description = "Clip the gradient norm (0: off; default 1).")
  double maxGradNorm;

  @Option(names = "--steps", description = "Optimizer steps (default: --epochs).")
  Long steps;

  @Option(names = "--epochs", defaultValue = "1", description = "Passes over the data when --steps is not given "
      + "(default 1).")
  int epochs;

  @Option(names = "--batch", defaultValue = "8", paramLabel = "N", description = "Sequences per micro-batch "
      + "(default 8): packed, a batch holds N·seq-len tokens of whole examples; padded, N examples.")
  int batch;

  @Option(names = "--padding", description = "One example per sequence, padded, instead of packing several with "
      + "their boundaries kept.")
  boolean padding;

  @Option(names = "--grad-accum", defaultValue = "1", description = "Micro-batches per step (default 1).")
  int gradAccum;

  @Option(names = "--seed", defaultValue = "42", description = "Seed of shuffling, init and dropout (default 42).")
  long seed;

  @Option(names = "--eval-every", defaultValue = "0", paramLabel = "STEPS",
      description = "Evaluate every this many steps (default 0: at the end only).")
  int evalEvery;

  @Option(names = "--save-every", defaultValue = "500", paramLabel = "STEPS",
      description = "Checkpoint every this many steps and at the end (default 500).")
  int saveEvery;

  @Option(names = "--keep", defaultValue = "2", description = "Checkpoints kept (default 2).")
  int keep;

  @Option(names = "--checkpoint-layers", description = "Recompute each layer in backward: less memory, more time.")
  boolean checkpointLayers;

  @Option(names = "--export-rank", defaultValue = "0", paramLabel = "R",
      description = "plora, relora, full: also fit a rank-R PEFT adapter to the update (into adapter-rank-R/).")
  int exportRank;

  @Override
  public Integer call() throws Exception {
    PrintWriter err = spec.commandLine().getErr();
    Method m = Method.parse(method);
    data.check(model.config());
    if (eval != null) {
      Options.inputFile("--eval", eval);
    }
    if (eval != null && evalFraction > 0) {
      throw new IllegalArgumentException("--eval and --eval-fraction: give one of them, not both");
    }
    FineTuneSettings.Builder sb = FineTuneSettings.builder(model.model, out).force(force).resume(resume).method(m)
        .r(r).alpha(alpha).dropout(dropout).targetModules(targetModules).rsLora(rsLora).unloadEvery(unloadEvery)
        .momentum(momentum).pruneRatio(pruneRatio).schedule(schedule.toLowerCase(Locale.ROOT))
        .warmup(warmup).weightDecay(weightDecay).maxGradNorm(maxGradNorm).gradientAccumulation(gradAccum)
        .dtype(model.dtype()).backend(model.backendName())
        .seed(seed).evalEvery(evalEvery).saveEvery(saveEvery, keep).checkpointLayers(checkpointLayers)
        .exportRank(exportRank).steps(steps != null ? steps : 1);
    if (lr != null) {
      sb.lr(lr);
    }
    sb.build(); // every setting checked before the data are read
    try {
      FineTune.checkOutput(out, force, resume);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("--" + e.getMessage(), e); // out: or resume:, as the options are named
    }
    if (epochs < 1) {
      throw new IllegalArgumentException("--epochs: expected >= 1, got " + epochs);
    }
    try (Tokenizer tokenizer = model.tokenizer()) {
      Dataset train = data.read("--data", data.data, tokenizer);
      Dataset evalSet = eval != null ? data.read("--eval", eval, tokenizer) : null;
      if (evalFraction > 0) {
        Dataset.Split split = train.split(evalFraction, seed);
        train = split.train();
        evalSet = split.heldOut();
      }
      err.println("train: " + train.stats().summary());
      if (evalSet != null) {
        err.println("eval: " + evalSet.stats().summary());
      }
      Batches batches = batches(train, tokenizer);
      long total = steps != null ? steps : batches.steps(epochs, gradAccum);
      Map<String, Object> description = new LinkedHashMap<>(data.describe(train));
      description.put("batch", batch);
      description.put("packing", !padding);
      description.put("epochs", steps != null ? null : epochs);
      description.put("eval", eval != null ? eval.toString() : evalFraction > 0 ? "held out " + evalFraction : null);
      description.put("eval_examples", evalSet == null ? 0 : evalSet.size());
      FineTuneSettings settings = sb.steps(total).data(description).build();
      FineTune.Builder job = FineTune.builder(settings).train(batches.source(gradAccum))
          .eval(evalSet == null ? List.of() : evalSet.examples());
      long tokensPerStep = (long) batch * data.seqLen * gradAccum;
      job.listener(ProgressBar.onStderr("finetune").counting(tokensPerStep, "tokens"));
      job.listener(new FineTune.Listener() {
        @Override
        public void onEval(long step, Evaluation.Result r) {
          err.printf(Locale.ROOT, "eval after step %d: loss %.4f perplexity %.3f (%d tokens)%n", step, r.loss(),
              r.perplexity(), r.tokens());
          err.flush();
        }
      });
      FineTuneResult result = job.build().run();
      FineTunePlot.write(out.resolve("loss.png"), result);
      PrintWriter o = spec.commandLine().getOut();
      o.printf(Locale.ROOT, "%s: %d steps, final train loss %.4f, %.0f tokens/s%n", m.cliName(), result.steps(),
          result.finalLoss(), result.tokensPerSecond());
      if (result.finalEval() != null) {
        o.printf(Locale.ROOT, "eval loss %.4f, perplexity %.3f over %d tokens%n", result.finalEval().loss(),
            result.finalEval().perplexity(), result.finalEval().tokens());
      }
      result.exportErrors().forEach((module, e) -> o.printf(Locale.ROOT, "rank-%d fit of %s: relative error %.4f%n",
          exportRank, module, e));
      result.outputs().forEach((kind, path) -> o.println(kind + ": " + path));
      o.println("run record: " + out.resolve(FineTune.RUN_JSON) + ", plot: " + out.resolve("loss.png"));
      return 0;
    }
  }

  /** The training batches: packed (the default) or padded, shuffled by --seed each epoch. */
  private Batches batches(Dataset train, Tokenizer tokenizer) {
    if (batch < 1) {
      throw new IllegalArgumentException("--batch: expected >= 1, got " + batch);
    }
    int pad = tokenizer.padId().orElse(tokenizer.eosId().orElse(0));
    Batches.Builder b = padding ? Batches.padded(train.examples(), batch)
        : Batches.packed(train.examples(), Math.multiplyExact(batch, data.seqLen));
    return b.seed(seed).padId(pad).build();
  }
}
