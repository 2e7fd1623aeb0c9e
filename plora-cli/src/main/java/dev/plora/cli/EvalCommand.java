package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.data.Dataset;
import dev.plora.finetune.Evaluation;
import dev.plora.finetune.ExactMatch;
import dev.plora.generate.GenerationConfig;
import dev.plora.io.AtomicFiles;
import dev.plora.io.Json;
import dev.plora.io.PeftAdapter;
import dev.plora.model.llama.LlamaConfig;
import dev.plora.model.llama.LlamaForCausalLM;
import dev.plora.text.Tokenizer;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
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

  @Mixin DataOptions data;

  @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT adapter folder to apply to the model.")
  Path adapter;

  @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON (atomically).")
  Path json;

  @Option(names = "--force", description = "Replace --json if it exists.")
  boolean force;

  @Option(names = "--generate", description = "Also measure greedy exact-match accuracy.")
  boolean generate;

  @Option(names = "--dtype", description = "f32, bf16 or f16 compute (default f32 on cpu, bf16 on cuda).")
  String dtype;

  @Option(names = "--backend", description = "cpu or cuda (default: as plora info says).")
  String backend;

  @Override
  public Integer call() throws Exception {
    PrintWriter out = spec.commandLine().getOut();
    LlamaConfig config = data.modelConfig();
    if (adapter != null) {
      Options.adapterFolder("--adapter", adapter);
    }
    if (json != null) {
      Options.outputFile("--json", json, force);
    }
    dev.plora.tensor.DType forced = dtype == null ? null : Options.dtype("--dtype", dtype, true);
    try (Tokenizer tokenizer = data.tokenizer(); Backend b = Options.backend(backend)) {
      dev.plora.tensor.DType compute = forced != null ? forced
          : b.device() == dev.plora.tensor.Device.CUDA ? dev.plora.tensor.DType.BF16 : dev.plora.tensor.DType.F32;
      try (LlamaForCausalLM model = LlamaForCausalLM.load(b, data.model, compute, false)) {
        if (adapter != null) {
          PeftAdapter.apply(model, adapter);
        }
        Dataset set = data.read("--data", data.data, tokenizer, config);
        spec.commandLine().getErr().println("data: " + set.stats().summary());
        Evaluation.Result r = Evaluation.evaluate(model, set.examples());
        out.printf(Locale.ROOT, "loss %.6f perplexity %.4f over %d scored tokens in %d examples%n", r.loss(),
            r.perplexity(), r.tokens(), set.size());
        ExactMatch.Result em = null;
        if (generate) {
          var stops = new java.util.LinkedHashSet<>(GenerationConfig.eosTokenIds(data.model));
          tokenizer.eosId().ifPresent(stops::add);
          em = ExactMatch.evaluate(model, set.examples(), stops);
          out.printf(Locale.ROOT, "exact match %.4f (%d of %d examples with one answer)%n", em.accuracy(), em.matched(),
              em.answered());
        }
        if (json != null) {
          Map<String, Object> doc = new LinkedHashMap<>(r.toJson(false));
          doc.put("examples_count", set.size());
          if (em != null) {
            doc.put("exact_match", Double.isFinite(em.accuracy()) ? em.accuracy() : null);
            doc.put("exact_match_examples", em.answered());
          }
          List<Object> each = new ArrayList<>();
          for (int i = 0; i < r.examples().size(); i++) {
            Evaluation.ExampleLoss e = r.examples().get(i);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("loss", Double.isFinite(e.loss()) ? e.loss() : null);
            m.put("tokens", e.tokens());
            if (em != null) {
              m.put("exact_match", em.matches().get(i));
            }
            each.add(m);
          }
          doc.put("examples", each);
          doc.put("model", data.model.toString());
          doc.put("adapter", adapter == null ? null : adapter.toString());
          doc.put("data", data.data.toString());
          try {
            AtomicFiles.write(json, (Json.write(doc, 2) + "\n").getBytes(StandardCharsets.UTF_8), force);
          } catch (java.io.IOException e) {
            throw Options.cannotWrite(json, e);
          }
        }
      }
    }
    return 0;
  }
}
