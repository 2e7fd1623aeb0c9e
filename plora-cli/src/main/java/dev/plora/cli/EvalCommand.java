package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.data.Dataset;
import dev.plora.finetune.Evaluation;
import dev.plora.finetune.ExactMatch;
import dev.plora.io.AtomicFiles;
import dev.plora.io.Json;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.text.Tokenizer;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
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

/** {@code plora eval}: a model (and adapter) on JSONL data: mean token loss, perplexity, per example. */
@Command(name = "eval", sortOptions = false, description = {
    "Evaluate a model folder, optionally with a PEFT adapter, on JSONL data: the mean token loss (natural log)",
    "over the scored tokens, perplexity and token count, overall and per example; --generate adds greedy",
    "exact-match accuracy on examples with one answer (prompt/completion, Alpaca, single-turn chat)."})
final class EvalCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Mixin ModelOptions model;

  @Mixin DataOptions data;

  @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT adapter folder to apply to the model.")
  Path adapter;

  @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON (atomically).")
  Path json;

  @Option(names = "--force", description = "Replace --json if it exists.")
  boolean force;

  @Option(names = "--generate", description = "Also measure greedy exact-match accuracy.")
  boolean generate;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    data.check(model.config());
    if (adapter != null) {
      Options.adapterFolder("--adapter", adapter);
    }
    if (json != null) {
      Options.outputFile("--json", json, force);
    }
    model.dtype(); // a bad --dtype is refused before anything loads
    try (Tokenizer tokenizer = model.tokenizer(); Backend b = model.backend();
        LlamaForCausalLM m = model.load(b, adapter)) {
      Dataset set = data.read("--data", data.data, tokenizer);
      spec.commandLine().getErr().println("data: " + set.stats().summary());
      Evaluation.Result r = Evaluation.evaluate(m, set.examples());
      out.printf(Locale.ROOT, "loss %.6f perplexity %.4f over %d scored tokens in %d examples%n", r.loss(),
          r.perplexity(), r.tokens(), set.size());
      ExactMatch.Result em = null;
      if (generate) {
        em = ExactMatch.evaluate(m, set.examples(), model.stopTokenIds(tokenizer));
        out.printf(Locale.ROOT, "exact match %.4f (%d of %d examples with one answer)%n", em.accuracy(), em.matched(),
            em.answered());
      }
      if (json != null) {
        Map<String, Object> doc = new LinkedHashMap<>(r.toJson(true));
        doc.put("examples_count", set.size());
        if (em != null) {
          doc.put("exact_match", Double.isFinite(em.accuracy()) ? em.accuracy() : null);
          doc.put("exact_match_examples", em.answered());
          List<?> each = (List<?>) doc.get("examples");
          for (int i = 0; i < each.size(); i++) {
            @SuppressWarnings("unchecked")
            Map<String, Object> one = (Map<String, Object>) each.get(i);
            one.put("exact_match", em.matches().get(i));
          }
        }
        doc.put("model", model.model.toString());
        doc.put("adapter", adapter == null ? null : adapter.toString());
        doc.put("data", data.data.toString());
        try {
          AtomicFiles.write(json, (Json.write(doc, 2) + "\n").getBytes(StandardCharsets.UTF_8), force);
        } catch (java.io.IOException e) {
          throw Options.cannotWrite(json, e);
        }
      }
    }
    return 0;
  }
}
