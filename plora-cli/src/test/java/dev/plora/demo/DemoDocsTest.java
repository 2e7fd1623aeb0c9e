package dev.plora.demo;

import static dev.plora.demo.PublishedDemo.number;
import static dev.plora.demo.PublishedDemo.runs;
import static dev.plora.demo.PublishedDemo.section;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.cli.Main;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The published demo results agree with each other and with the code: the README's table with
 * {@code docs/demo/report.json}, and that report with a fresh run of {@code plora demo}.
 */
class DemoDocsTest {
  /** The repository root (the build sets it; a test run from the root folder needs none). */
  private static final Path ROOT = Path.of(System.getProperty("plora.repository", "."));
  private static final Path REPORT = ROOT.resolve(Path.of("docs", "demo", "report.json"));
  private static final Map<String, String> README_NAMES = Map.of("full fine-tuning", "full", "LoRA", "lora",
      "PLoRA, FULL unloading", "plora_full", "PLoRA, MOMENTUM unloading", "plora_momentum",
      "ReLoRA (FULL + prune 99% + jagged lr)", "relora");

  @Test
  void readmeTableIsTheReport() throws IOException {
    Map<String, Map<String, Object>> report = runs(Files.readString(REPORT));
    int rows = 0;
    for (String line : section(Files.readAllLines(ROOT.resolve("README.md")), "## What the demo shows")) {
      String[] cells = line.split("\\|");
      if (cells.length < 12 || !README_NAMES.containsKey(cells[1].trim())) {
        continue;
      }
      rows++;
      String method = README_NAMES.get(cells[1].trim());
      Map<String, Object> run = report.get(method);
      assertEquals(format("%.5f", run, "final_val_loss"), cells[6].trim(), method + ": final val loss");
      assertEquals(format("%.4f", run, "gain"), cells[7].trim(), method + ": gain");
      assertEquals(format("%.2f", run, "gain_vs_lora"), cells[8].trim().replace("*", ""), method + ": gain vs LoRA");
      assertEquals(format("%.1f", run, "effective_rank"), cells[9].trim(), method + ": effective rank");
      assertEquals(format("%.0f", run, "rank_above_1pct"), cells[10].trim(), method + ": σ > 1%");
      assertEquals(format("%.0f", run, "trainable_bytes", 1.0 / 1024), cells[11].trim(), method + ": trainable KiB");
    }
    assertEquals(README_NAMES.size(), rows, "README rows of the demo table");
  }

  /** The default run (about a minute on 2 cores): what the README and docs/demo show is what the code prints. */
  @Test
  void reportIsWhatTheDemoComputes(@TempDir Path dir) throws IOException {
    StringWriter out = new StringWriter(), err = new StringWriter();
    int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), "demo", "--backend", "cpu", "--out",
        dir.toString());
    assertEquals(0, code, err.toString());
    Map<String, Map<String, Object>> published = runs(Files.readString(REPORT));
    Map<String, Map<String, Object>> fresh = runs(Files.readString(dir.resolve("report.json")));
    assertEquals(published.keySet(), fresh.keySet());
    for (String method : published.keySet()) {
      for (String key : List.of("lr", "final_val_loss", "gain", "gain_vs_lora", "effective_rank", "rank_above_1pct")) {
        double want = number(published.get(method), key), got = number(fresh.get(method), key);
        // the sums of a run may round differently on another core count; a change of the results does not hide here
        assertTrue(Math.abs(got - want) <= 2e-3 * Math.abs(want), method + " " + key + ": docs/demo/report.json has "
            + want + ", the demo computes " + got + " (regenerate with ./plora demo --out docs/demo)");
      }
    }
  }


  private static String format(String pattern, Map<String, Object> run, String key) {
    return format(pattern, run, key, 1);
  }

  private static String format(String pattern, Map<String, Object> run, String key, double factor) {
    return String.format(Locale.ROOT, pattern, number(run, key) * factor);
  }
}
