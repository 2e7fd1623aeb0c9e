package dev.plora.demo;

import static dev.plora.demo.ReportJson.num;

import dev.plora.io.AtomicFiles;
import dev.plora.io.Json;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The demo's results: the stdout table and report.json. */
public record DemoReport(String backend, long seed, List<RunResult> runs) {
  public void printTable(PrintWriter out) {
    out.printf(Locale.ROOT, "%-15s %4s %6s %5s %7s %10s %10s %9s %8s %8s %8s %10s %7s %6s%n", "method", "rank",
        "unload", "m", "lr", "val_loss_0", "val_loss", "gain", "vs_lora", "erank", ">1%", "train_KiB", "sec", "it/s");
    for (RunResult r : runs) {
      out.printf(Locale.ROOT, "%-15s %4d %6s %5s %7.0e %10.5f %10.5f %9.5f %8.2f %8.1f %8.1f %10.1f %7.1f %6.0f%n",
          r.method().reportName(), r.rank(), r.unloadEvery() == 0 ? "-" : Integer.toString(r.unloadEvery()),
          r.momentum() == 0 ? "-" : String.format(Locale.ROOT, "%.2f", r.momentum()), r.lr(), r.initialValLoss(),
          r.finalValLoss(), r.gain(), r.gainVsLora(), r.effectiveRank(), r.rankAbove1pct(), r.trainableBytes() / 1024.0,
          r.seconds(), r.stepsPerSecond());
    }
    out.flush();
  }

  /** report.json: the run settings, then one run a line. */
  public String toJson() {
    Map<String, Object> report = new LinkedHashMap<>();
    report.put("backend", backend);
    report.put("seed", seed);
    report.put("runs", runs.stream().map(DemoReport::runJson).toList());
    return Json.write(report, 2) + "\n";
  }

  private static Map<String, Object> runJson(RunResult r) {
    Map<String, Object> run = new LinkedHashMap<>();
    run.put("method", r.method().reportName());
    run.put("rank", r.rank());
    run.put("unload_every", r.unloadEvery());
    run.put("momentum", num(r.momentum()));
    run.put("lr", num(r.lr()));
    run.put("initial_val_loss", num(r.initialValLoss()));
    run.put("final_val_loss", num(r.finalValLoss()));
    run.put("gain", num(r.gain()));
    run.put("gain_vs_lora", num(r.gainVsLora()));
    run.put("effective_rank", num(r.effectiveRank()));
    run.put("rank_above_1pct", num(r.rankAbove1pct()));
    run.put("trainable_bytes", r.trainableBytes());
    run.put("seconds", num(r.seconds()));
    run.put("steps_per_second", num(r.stepsPerSecond()));
    run.put("lr_sweep", ReportJson.lrSweep(r.lrSweep(), "val_loss"));
    return run;
  }


  /** Writes report.json into {@code dir} atomically. */
  public void writeJson(Path dir) throws IOException {
    AtomicFiles.write(dir.resolve("report.json"), toJson().getBytes(StandardCharsets.UTF_8), true);
  }
}
