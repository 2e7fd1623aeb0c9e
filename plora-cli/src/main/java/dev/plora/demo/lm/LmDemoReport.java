package dev.plora.demo.lm;

import static dev.plora.demo.ReportJson.num;

import dev.plora.demo.DemoPlots;
import dev.plora.demo.Method;
import dev.plora.demo.ReportJson;
import dev.plora.io.AtomicFiles;
import dev.plora.io.Json;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The language-model demo's outputs: the stdout table and summary, report.json, loss.png and spectrum.png. */
public final class LmDemoReport {
  public static final String REPORT = "report.json", LOSS_PLOT = "loss.png", SPECTRUM_PLOT = "spectrum.png";
  /** Below this PLoRA/LoRA gain ratio a quick run says that its budget is too short to show the effect. */
  static final double QUICK_CLAIM = 1.2;

  private final LmDemo.Result result;

  public LmDemoReport(LmDemo.Result result) {
    this.result = result;
  }

  public void printTable(PrintWriter out) {
    out.printf(Locale.ROOT, "base model on the new language: test loss %.4f, legal next token %.1f%%; "
        + "the language's own loss (the floor) %.4f, a uniform guess %.4f%n", result.baseTestLoss(),
        100 * result.baseLegalNext(), result.testFloor(), result.uniform());
    out.printf(Locale.ROOT, "%-15s %4s %6s %5s %7s %9s %7s %7s %7s %6s %5s %9s %6s %7s%n", "method", "rank", "unload",
        "m", "lr", "test_loss", "gain", "vs_lora", "legal%", "erank", ">1%", "train_KiB", "sec", "tok/s");
    for (LmRun r : result.runs()) {
      out.printf(Locale.ROOT, "%-15s %4d %6s %5s %7.0e %9.4f %7.4f %7.2f %7.1f %6.1f %5.1f %9.1f %6.1f %7.0f%n",
          r.method().reportName(), r.rank(), r.unloadEvery() == 0 ? "-" : Integer.toString(r.unloadEvery()),
          r.momentum() == 0 ? "-" : String.format(Locale.ROOT, "%.2f", r.momentum()), r.lr(), r.testLoss(), r.gain(),
          r.gainVsLora(), 100 * r.legalNext(), r.effectiveRank(), r.rankAbove1pct(), r.trainableBytes() / 1024.0,
          r.seconds(), r.tokensPerSecond());
    }
    out.flush();
  }

  /** What the table means, in sentences: PLoRA against LoRA, the ceiling, and a quick run's caveat. */
  public void printSummary(PrintWriter out) {
    LmDemoConfig c = result.config();
    LmRun lora = result.run(Method.LORA);
    LmRun plora = bestPlora();
    for (Method m : new Method[] {Method.PLORA_FULL, Method.PLORA_MOMENTUM, Method.RELORA}) {
      LmRun r = result.run(m);
      out.printf(Locale.ROOT, "%s learned %.2fx what LoRA learned at r = %d on %s (same trainable bytes: %s), "
          + "ΔW effective rank %.1f vs LoRA's %.1f%n", m.reportName(), r.gainVsLora(), c.rank(),
          String.join(", ", c.targetModules()), r.trainableBytes() == lora.trainableBytes() ? "yes" : "no",
          r.effectiveRank(), lora.effectiveRank());
    }
    LmRun full = result.run(Method.FULL);
    out.printf(Locale.ROOT, "full fine-tuning (the ceiling, %.0fx the trainable bytes): %.2fx LoRA's gain%n",
        full.trainableBytes() / (double) lora.trainableBytes(), full.gainVsLora());
    if (c.quickRun()) {
      out.printf(Locale.ROOT, "quick run: %d steps and %d runs (the default run: %d and %d). PLoRA's lead over LoRA "
          + "grows with the steps%s%n", c.steps(), c.runs(), LmDemoConfig.defaults().steps(), LmDemoConfig.defaults().runs(),
          plora.gainVsLora() < QUICK_CLAIM ? String.format(Locale.ROOT, "; at %.2fx this budget is too short to show "
              + "the effect, so read nothing into these ratios and run without --quick", plora.gainVsLora())
              : "; expect a smaller ratio here than there");
    }
    out.flush();
  }

  /** The better of PLoRA's two unloading modes by test gain. */
  LmRun bestPlora() {
    LmRun a = result.run(Method.PLORA_FULL), b = result.run(Method.PLORA_MOMENTUM);
    return a.gain() >= b.gain() ? a : b;
  }

  public String toJson() {
    LmDemoConfig c = result.config();
    Map<String, Object> report = new LinkedHashMap<>();
    report.put("backend", result.backend());
    report.put("seed", c.seed());
    report.put("quick", c.quickRun());
    report.put("steps", c.steps());
    report.put("batch", c.batch());
    report.put("target_modules", c.targetModules());
    Map<String, Object> model = new LinkedHashMap<>();
    model.put("hidden_size", LmDemoBase.HIDDEN);
    model.put("intermediate_size", LmDemoBase.INTERMEDIATE);
    model.put("num_hidden_layers", LmDemoBase.LAYERS);
    model.put("num_attention_heads", LmDemoBase.HEADS);
    model.put("vocab_size", LmDemoBase.VOCAB);
    model.put("seq_len", LmDemoBase.SEQ_LEN);
    report.put("model", model);
    Map<String, Object> base = new LinkedHashMap<>();
    base.put("validation_loss", num(result.baseValidationLoss()));
    base.put("test_loss", num(result.baseTestLoss()));
    base.put("legal_next", num(result.baseLegalNext()));
    base.put("validation_floor", num(result.validationFloor()));
    base.put("test_floor", num(result.testFloor()));
    base.put("uniform_loss", num(result.uniform()));
    report.put("base", base);
    report.put("runs", result.runs().stream().map(LmDemoReport::runJson).toList());
    return Json.write(report, 2) + "\n";
  }

  private static Map<String, Object> runJson(LmRun r) {
    Map<String, Object> run = new LinkedHashMap<>();
    run.put("method", r.method().reportName());
    run.put("rank", r.rank());
    run.put("unload_every", r.unloadEvery());
    run.put("momentum", num(r.momentum()));
    run.put("lr", num(r.lr()));
    run.put("lr_sweep", ReportJson.lrSweep(r.sweep(), "validation_loss"));
    run.put("test_loss", num(r.testLoss()));
    run.put("gain", num(r.gain()));
    run.put("gain_vs_lora", num(r.gainVsLora()));
    run.put("legal_next", num(r.legalNext()));
    run.put("effective_rank", num(r.effectiveRank()));
    run.put("rank_above_1pct", num(r.rankAbove1pct()));
    Map<String, Object> modules = new LinkedHashMap<>();
    r.moduleRanks().forEach((path, v) -> {
      Map<String, Object> ranks = new LinkedHashMap<>();
      ranks.put("effective_rank", num(v[0]));
      ranks.put("rank_above_1pct", num(v[1]));
      modules.put(path, ranks);
    });
    run.put("modules", modules);
    run.put("trainable_bytes", r.trainableBytes());
    run.put("seconds", num(r.seconds()));
    run.put("tokens_per_second", num(r.tokensPerSecond()));
    List<Object> curve = new ArrayList<>();
    for (int i = 0; i < r.curve().length; i++) {
      curve.add(List.of(r.curveSteps()[i], num(r.curve()[i])));
    }
    run.put("validation_curve", curve);
    return run;
  }


  /** report.json, loss.png and spectrum.png into {@code dir}, each written atomically. */
  public void write(Path dir) throws IOException {
    AtomicFiles.write(dir.resolve(REPORT), toJson().getBytes(StandardCharsets.UTF_8), true);
    // above the floor, so that the log axis spans decades and a method near the floor stays apart from the others
    List<DemoPlots.Series> curves = result.runs().stream().map(r -> new DemoPlots.Series(r.method(),
        Arrays.stream(r.curveSteps()).asDoubleStream().toArray(),
        Arrays.stream(r.curve()).map(l -> l - result.validationFloor()).toArray())).toList();
    DemoPlots.write(dir.resolve(LOSS_PLOT), DemoPlots.lossChart("Validation loss on the new language above its floor "
        + "(same steps, batch and data)", "validation loss − floor (nats/token)", curves));
    LmRun first = result.runs().get(0);
    String module = first.moduleRanks().keySet().iterator().next();
    List<DemoPlots.Series> spectra = result.runs().stream().map(r -> new DemoPlots.Series(r.method(), null,
        r.spectrum())).toList();
    DemoPlots.write(dir.resolve(SPECTRUM_PLOT), DemoPlots.spectrumChart("Singular values of the learned update ΔW ("
        + module + ")", spectra, null, null));
  }
}
