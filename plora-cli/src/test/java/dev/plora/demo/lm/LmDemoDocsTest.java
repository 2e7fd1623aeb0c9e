package dev.plora.demo.lm;

import static dev.plora.demo.PublishedDemo.number;
import static dev.plora.demo.PublishedDemo.runs;
import static dev.plora.demo.PublishedDemo.section;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.demo.Method;
import dev.plora.io.Json;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The published language-model demo agrees with itself and with the code: the README's table with
 * {@code docs/demo-lm/report.json}, and each method's row with a fresh run at the chosen learning rate.
 */
class LmDemoDocsTest {
  private static final Path ROOT = Path.of(System.getProperty("plora.repository", "."));
  private static final Path REPORT = ROOT.resolve(Path.of("docs", "demo-lm", "report.json"));
  private static final String SECTION = "## The language-model demo";
  private static final Map<String, String> README_NAMES = Map.of("full fine-tuning", "full", "LoRA", "lora",
      "PLoRA, FULL unloading", "plora_full", "PLoRA, MOMENTUM unloading", "plora_momentum", "ReLoRA", "relora");

  @Test
  void readmeTableIsTheReport() throws IOException {
    Map<String, Map<String, Object>> report = runs(Files.readString(REPORT));
    int rows = 0;
    for (String line : section(Files.readAllLines(ROOT.resolve("README.md")), SECTION)) {
      String[] cells = line.split("\\|");
      if (cells.length < 13 || !README_NAMES.containsKey(cells[1].trim())) {
        continue;
      }
      rows++;
      String method = README_NAMES.get(cells[1].trim());
      Map<String, Object> run = report.get(method);
      assertEquals(format("%.0e", run, "lr", 1), cells[5].trim(), method + ": lr");
      assertEquals(format("%.4f", run, "test_loss", 1), cells[6].trim(), method + ": test loss");
      assertEquals(format("%.4f", run, "gain", 1), cells[7].trim(), method + ": gain");
      assertEquals(format("%.2f", run, "gain_vs_lora", 1), cells[8].trim().replace("*", ""), method + ": vs LoRA");
      assertEquals(format("%.1f", run, "legal_next", 100), cells[9].trim().replace("%", ""), method + ": legal next");
      assertEquals(format("%.1f", run, "effective_rank", 1), cells[10].trim(), method + ": effective rank");
      assertEquals(format("%.1f", run, "rank_above_1pct", 1), cells[11].trim(), method + ": σ > 1%");
      assertEquals(format("%.1f", run, "trainable_bytes", 1.0 / 1024), cells[12].trim(), method + ": trainable KiB");
    }
    assertEquals(README_NAMES.size(), rows, "README rows of the language-model demo's table");
  }

  /**
   * Every method rerun at the learning rate the published sweep chose (about two minutes on 2
   * cores): its test loss and ΔW ranks are what docs/demo-lm/report.json says.
   */
  @Test
  @SuppressWarnings("unchecked")
  void reportIsWhatTheDemoComputes(@TempDir Path dir) throws IOException {
    Map<String, Object> published = (Map<String, Object>) Json.parse(Files.readString(REPORT));
    Map<String, Map<String, Object>> runs = runs(Files.readString(REPORT));
    Map<Method, double[]> chosen = new EnumMap<>(Method.class);
    for (Method m : Method.values()) {
      chosen.put(m, new double[] {number(runs.get(m.reportName()), "lr")});
    }
    LmDemoConfig config = LmDemoConfig.defaults().withSeed(((BigDecimal) published.get("seed")).longValue())
        .with("cpu", null, null, null, null).withLearningRates(chosen);
    LmDemo.Result fresh = LmDemo.run(config, dir, p -> { });
    assertClose(number((Map<String, Object>) published.get("base"), "test_loss"), fresh.baseTestLoss(), "base test loss");
    for (LmRun r : fresh.runs()) {
      Map<String, Object> want = runs.get(r.method().reportName());
      assertClose(number(want, "test_loss"), r.testLoss(), r.method().reportName() + " test loss");
      assertClose(number(want, "gain_vs_lora"), r.gainVsLora(), r.method().reportName() + " gain vs LoRA");
      assertClose(number(want, "effective_rank"), r.effectiveRank(), r.method().reportName() + " effective rank");
    }
  }

  /** Sums may round differently on another core count; a change of the results does not hide in 2e-3. */
  private static void assertClose(double want, double got, String what) {
    assertTrue(Math.abs(got - want) <= 2e-3 * Math.abs(want), what + ": docs/demo-lm/report.json has " + want
        + ", the demo computes " + got + " (regenerate with ./plora demo lm --out docs/demo-lm)");
  }


  private static String format(String pattern, Map<String, Object> run, String key, double factor) {
    return String.format(Locale.ROOT, pattern, number(run, key) * factor);
  }
}
