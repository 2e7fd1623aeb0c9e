package dev.plora.cli;

import dev.plora.backend.Backend;
import dev.plora.demo.DemoConfig;
import dev.plora.demo.DemoPlots;
import dev.plora.demo.DemoReport;
import dev.plora.demo.DemoRunner;
import dev.plora.demo.Method;
import dev.plora.demo.RunResult;
import dev.plora.demo.TeacherTask;
import dev.plora.tensor.DType;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code plora demo}: PLoRA against LoRA, ReLoRA and full fine-tuning on a generated task. */
@Command(name = "demo", subcommands = LmDemoCommand.class, description = "Show PLoRA breaking LoRA's low-rank bottleneck on a generated "
    + "teacher-student task: a table on stdout, report.json and two plots in --out.")
final class DemoCommand implements Callable<Integer> {
  private static final String REPORT = "report.json", LOSS_PLOT = "loss.png", SPECTRUM_PLOT = "spectrum.png";

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Option(names = "--backend", description = "cpu or cuda (default: as plora info says).")
  String backend;

  @Option(names = "--dtype", description = "f32 or bf16 (default f32).", defaultValue = "f32")
  String dtype;

  @Option(names = "--rank", description = "LoRA rank r for every adapter method (default 8).")
  Integer rank;

  @Option(names = "--steps", description = "Optimizer steps per method (default 1200; --quick 150).")
  Integer steps;

  @Option(names = "--unload-every", description = "Stage length of plora_full and relora (default 100; --quick 30).")
  Integer unloadEvery;

  @Option(names = "--momentum", description = "m of plora_momentum (default 0.1).")
  Float momentum;

  @Option(names = "--momentum-every", description = "Unload interval of plora_momentum (default 1).")
  Integer momentumEvery;

  @Option(names = "--seed", description = "Seed of the task and the adapters (default 1).", defaultValue = "1")
  long seed;

  @Option(names = "--quick", description = "CI-sized: fewer steps and samples (under 20 s on 2 cores).")
  boolean quick;

  @Option(names = "--out", paramLabel = "DIR", description = "Folder for report.json, loss.png, spectrum.png "
      + "(default plora-demo).", defaultValue = "plora-demo")
  Path out;

  @Override
  public Integer call() throws Exception {
    DType type = Options.dtype("--dtype", dtype, false);
    DemoConfig config = (quick ? DemoConfig.quick() : DemoConfig.defaults()).withSeed(seed)
        .with(type, rank, steps, unloadEvery, momentum, momentumEvery).validate();
    Options.outputFolder("--out", out, REPORT, LOSS_PLOT, SPECTRUM_PLOT);
    System.setProperty("java.awt.headless", "true");
    PrintWriter stdout = spec.commandLine().getOut();
    PrintWriter stderr = spec.commandLine().getErr();
    try (Backend b = Options.backend(backend);
        TeacherTask task = new TeacherTask(b, config.dtype(), config.seed(), config.width(), config.layers(),
            config.trainSize(), config.valSize(), config.updateNorm())) {
      stdout.printf(Locale.ROOT, "plora demo on %s, %s: %d adapted layers of width %d, target updates full-rank "
          + "(σᵢ ∝ 1/√(i+1)); %d steps of batch %d per method, r = %d, seed %d%n", b.name(), config.dtype(),
          config.layers(), config.width(), config.steps(), config.batch(), config.rank(), config.seed());
      stdout.flush();
      List<RunResult> runs = new DemoRunner(b, config, task, DemoProgress.printer(stderr, "demo")).runAll();
      DemoReport report = new DemoReport(b.name(), config.seed(), runs);
      report.printTable(stdout);
      summarize(stdout, runs, config);
      try {
        report.writeJson(out);
        DemoPlots.writeLoss(out.resolve(LOSS_PLOT), runs);
        DemoPlots.writeSpectrum(out.resolve(SPECTRUM_PLOT), runs, task.updateSpectrum);
      } catch (java.io.IOException e) {
        throw Options.cannotWrite(out, e);
      }
      stdout.println("wrote " + out.resolve(REPORT) + ", " + out.resolve(LOSS_PLOT) + ", "
          + out.resolve(SPECTRUM_PLOT));
    }
    return 0;
  }

  private static void summarize(PrintWriter out, List<RunResult> runs, DemoConfig config) {
    RunResult lora = find(runs, Method.LORA);
    for (Method m : new Method[] {Method.PLORA_FULL, Method.PLORA_MOMENTUM, Method.RELORA}) {
      RunResult r = find(runs, m);
      out.printf(Locale.ROOT, "%s learned %.2fx what LoRA learned at r = %d (same trainable bytes: %s), ΔW effective "
          + "rank %.1f vs LoRA's %.1f%n", m.reportName(), r.gainVsLora(), config.rank(),
          r.trainableBytes() == lora.trainableBytes() ? "yes" : "no", r.effectiveRank(), lora.effectiveRank());
    }
    RunResult full = find(runs, Method.FULL);
    out.printf(Locale.ROOT, "full fine-tuning (the ceiling, %.0fx the trainable bytes): %.2fx LoRA's gain%n",
        full.trainableBytes() / (double) lora.trainableBytes(), full.gainVsLora());
    out.flush();
  }

  private static RunResult find(List<RunResult> runs, Method m) {
    return runs.stream().filter(r -> r.method() == m).findFirst().orElseThrow();
  }
}
