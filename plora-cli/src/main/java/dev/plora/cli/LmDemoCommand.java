package dev.plora.cli;

import dev.plora.demo.lm.LmDemo;
import dev.plora.demo.lm.LmDemoBase;
import dev.plora.demo.lm.LmDemoConfig;
import dev.plora.demo.lm.LmDemoReport;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code plora demo lm}: PLoRA against LoRA, ReLoRA and full fine-tuning on a small Llama. */
@Command(name = "lm", description = "Fine-tune a small Llama (shipped, pretrained by plora on generated languages) on "
    + "a language it never saw with every method at the same budget, each at the best learning rate of its sweep: "
    + "a table on stdout, report.json, loss.png, spectrum.png and each method's output in --out.")
final class LmDemoCommand implements Callable<Integer> {
  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = "--backend", description = "cpu or cuda (default: as plora info says).")
  String backend;

  @Option(names = "--seed", description = "Which new language, data order and adapter initialisation (default 1).",
      defaultValue = "1")
  long seed;

  @Option(names = "--rank", description = "LoRA rank r of every adapter method (default 1).")
  Integer rank;

  @Option(names = "--target-modules", split = ",", description = "Modules the adapters wrap (default q_proj,v_proj).")
  List<String> targets;

  @Option(names = "--steps", description = "Optimizer steps of every run (default 2400; --quick 800).")
  Integer steps;

  @Option(names = "--unload-every", description = "Stage length of plora_full and relora (default 10).")
  Integer unloadEvery;

  @Option(names = "--quick", description = "800 steps a run and two learning rates per method (under 2 minutes on 2 cores); "
      + "shows a smaller effect.")
  boolean quick;

  @Option(names = "--out", paramLabel = "DIR", description = "Folder for the report, plots, the base model and each "
      + "method's output: absent, empty or a previous demo lm's (default plora-demo-lm).", defaultValue = "plora-demo-lm")
  Path out;

  @Option(names = "--remake-base", paramLabel = "DIR", description = "Only pretrain the base model from scratch into "
      + "DIR (config.json, model.safetensors), bit for bit the shipped one.")
  Path remakeBase;

  @Override
  public Integer call() throws Exception {
    PrintWriter stdout = spec.commandLine().getOut();
    if (remakeBase != null) {
      Options.outputFolder("--remake-base", remakeBase, "config.json", "model.safetensors");
      LmDemoBase.remake(remakeBase);
      stdout.println("wrote " + remakeBase.resolve("config.json") + ", " + remakeBase.resolve("model.safetensors"));
      return 0;
    }
    LmDemoConfig config = (quick ? LmDemoConfig.quick() : LmDemoConfig.defaults()).withSeed(seed)
        .with(Options.backendName(backend), rank, steps, unloadEvery, targets).validate();
    demoFolder(out);
    System.setProperty("java.awt.headless", "true");
    stdout.printf(Locale.ROOT, "plora demo lm: a %d-layer Llama (hidden %d, vocabulary %d) pretrained on %d related "
        + "languages learns a new one (seed %d); %d steps of %d sequences of %d tokens per run, r = %d on %s, "
        + "%d runs in all (each method's learning-rate sweep)%n", LmDemoBase.LAYERS, LmDemoBase.HIDDEN,
        LmDemoBase.VOCAB, LmDemoBase.FAMILY, config.seed(), config.steps(), config.batch(), LmDemoBase.SEQ_LEN,
        config.rank(), String.join(",", config.targetModules()), config.runs());
    stdout.flush();
    LmDemo.Result result = LmDemo.run(config, out, DemoProgress.printer(spec.commandLine().getErr(), "demo lm"));
    LmDemoReport report = new LmDemoReport(result);
    report.printTable(stdout);
    report.printSummary(stdout);
    try {
      report.write(out);
    } catch (IOException e) {
      throw Options.cannotWrite(out, e);
    }
    stdout.println("wrote " + out.resolve(LmDemoReport.REPORT) + ", " + out.resolve(LmDemoReport.LOSS_PLOT) + ", "
        + out.resolve(LmDemoReport.SPECTRUM_PLOT) + " and each method's output under " + out);
    return 0;
  }

  /** The demo replaces its own earlier output only: --out is absent, or holds nothing but what a demo lm writes. */
  private static void demoFolder(Path dir) throws IOException {
    Options.outputFolder("--out", dir, LmDemoReport.REPORT, LmDemoReport.LOSS_PLOT, LmDemoReport.SPECTRUM_PLOT);
    if (Files.isDirectory(dir)) {
      try (Stream<Path> entries = Files.list(dir)) {
        List<String> foreign = entries.map(p -> p.getFileName().toString()).filter(n -> !LmDemo.OUTPUTS.contains(n))
            .sorted().toList();
        if (!foreign.isEmpty()) {
          throw new IllegalArgumentException("--out: " + dir + " holds " + foreign.get(0)
              + (foreign.size() > 1 ? " and " + (foreign.size() - 1) + " more" : "") + ", which no demo lm wrote; "
              + "expected an absent or empty folder, or an earlier demo lm's (report.json, base, lora, ...)");
        }
      }
    }
  }
}
