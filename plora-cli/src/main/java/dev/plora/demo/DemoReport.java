package dev.plora.demo;

import dev.plora.io.AtomicFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

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

  public String toJson() {
    String items = runs.stream().map(DemoReport::runJson).collect(Collectors.joining(",\n"));
    return "{\n  \"backend\": \"" + backend + "\",\n  \"seed\": " + seed + ",\n  \"runs\": [\n" + items + "\n  ]\n}\n";
  }

  private static String runJson(RunResult r) {
    String sweep = r.lrSweep().stream()
        .map(p -> String.format(Locale.ROOT, "{\"lr\": %s, \"val_loss\": %s}", num(p[0]), num(p[1])))
        .collect(Collectors.joining(", "));
    return String.format(Locale.ROOT, "    {\"method\": \"%s\", \"rank\": %d, \"unload_every\": %d, \"momentum\": %s, "
        + "\"lr\": %s, \"initial_val_loss\": %s, \"final_val_loss\": %s, \"gain\": %s, \"gain_vs_lora\": %s, "
        + "\"effective_rank\": %s, \"rank_above_1pct\": %s, \"trainable_bytes\": %d, \"seconds\": %s, "
        + "\"steps_per_second\": %s, \"lr_sweep\": [%s]}", r.method().reportName(), r.rank(), r.unloadEvery(),
        num(r.momentum()), num(r.lr()), num(r.initialValLoss()), num(r.finalValLoss()), num(r.gain()),
        num(r.gainVsLora()), num(r.effectiveRank()), num(r.rankAbove1pct()), r.trainableBytes(), num(r.seconds()),
        num(r.stepsPerSecond()), sweep);
  }

  /** JSON numbers; a non-finite value (a diverged run) becomes null. */
  private static String num(double v) {
    return Double.isFinite(v) ? String.format(Locale.ROOT, "%.6g", v) : "null";
  }

  /** Writes report.json into {@code dir} atomically. */
  public void writeJson(Path dir) throws IOException {
    AtomicFiles.write(dir.resolve("report.json"), toJson().getBytes(StandardCharsets.UTF_8), true);
  }
}
