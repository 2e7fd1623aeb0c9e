package dev.plora.demo.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.plora.cli.Main;
import dev.plora.demo.Method;
import dev.plora.io.Json;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code plora demo lm} on a short budget: the report's shape and consistency, the outputs, and bad input. */
class LmDemoCommandTest {
  private static final Set<String> MODULES = Set.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
      "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj");

  @Test
  @SuppressWarnings("unchecked")
  void aShortDemoWritesAConsistentReportPlotsAndEachMethodsOutput(@TempDir Path dir) throws Exception {
    StringWriter out = new StringWriter(), err = new StringWriter();
    int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), "demo", "lm", "--steps", "40",
        "--backend", "cpu", "--out", dir.toString());
    assertEquals(0, code, err.toString());
    assertTrue(out.toString().contains("plora_momentum") && out.toString().contains("ceiling"), out.toString());
    assertTrue(err.toString().contains("demo lm") && err.toString().contains("relora lr"), "progress: " + err);

    Map<String, Object> report = (Map<String, Object>) Json.parse(Files.readString(dir.resolve("report.json")));
    assertEquals("cpu", report.get("backend"));
    Map<String, Object> base = (Map<String, Object>) report.get("base");
    double baseTest = num(base.get("test_loss"));
    assertTrue(baseTest > num(base.get("uniform_loss")), "the base is worse than uniform on the new language");
    Map<String, Map<String, Object>> runs = new HashMap<>();
    for (Object o : (List<Object>) report.get("runs")) {
      Map<String, Object> run = (Map<String, Object>) o;
      runs.put((String) run.get("method"), run);
    }
    assertEquals(Set.of("full", "lora", "plora_full", "plora_momentum", "relora"), runs.keySet());
    Map<String, Object> lora = runs.get("lora");
    for (Map.Entry<String, Map<String, Object>> e : runs.entrySet()) {
      String name = e.getKey();
      Map<String, Object> r = e.getValue();
      List<Object> sweep = (List<Object>) r.get("lr_sweep");
      assertEquals(LmDemoConfig.defaults().learningRates(Method.valueOf(name.toUpperCase(java.util.Locale.ROOT))).length,
          sweep.size(), name + ": every learning rate of its grid");
      double best = Double.POSITIVE_INFINITY, bestLr = Double.NaN;
      for (Object p : sweep) {
        Map<String, Object> point = (Map<String, Object>) p;
        if (point.get("validation_loss") != null && num(point.get("validation_loss")) < best) {
          best = num(point.get("validation_loss"));
          bestLr = num(point.get("lr"));
        }
      }
      assertEquals(bestLr, num(r.get("lr")), name + ": the chosen rate has the lowest validation loss");
      List<Object> curve = (List<Object>) r.get("validation_curve");
      List<Object> start = (List<Object>) curve.get(0);
      assertEquals(0, num(start.get(0)), name + ": the curve starts at step 0");
      assertEquals(num(base.get("validation_loss")), num(start.get(1)), name + ": from the base's validation loss");
      assertEquals(best, num(((List<Object>) curve.get(curve.size() - 1)).get(1)), 1e-12, name + ": ends at the sweep's");
      assertEquals(baseTest - num(r.get("test_loss")), num(r.get("gain")), 1e-5, name + ": gain");
      assertEquals(num(r.get("gain")) / num(lora.get("gain")), num(r.get("gain_vs_lora")), 1e-4, name + ": vs LoRA");
      double legal = num(r.get("legal_next"));
      assertTrue(legal >= 0 && legal <= 1, name + ": legal_next is a fraction");
      Map<String, Object> modules = (Map<String, Object>) r.get("modules");
      assertEquals(MODULES, modules.keySet(), name + ": ranks of every adapted module");
      if (!name.equals("full")) {
        assertEquals(1, num(r.get("rank")), name);
        assertEquals(lora.get("trainable_bytes"), r.get("trainable_bytes"), name + ": LoRA's trainable bytes");
      }
    }
    for (Object m : ((Map<String, Object>) lora.get("modules")).values()) {
      assertTrue(num(((Map<String, Object>) m).get("rank_above_1pct")) <= 1, "LoRA's ΔW has rank <= r: " + m);
    }
    assertTrue(num(runs.get("full").get("trainable_bytes")) > 100 * num(lora.get("trainable_bytes")));
    assertTrue(num(runs.get("full").get("gain")) > 0, "full fine-tuning learns something in 40 steps");

    assertTrue(Files.isRegularFile(dir.resolve("base/model.safetensors")));
    assertTrue(Files.isRegularFile(dir.resolve("lora/adapter_config.json")), "LoRA's output is a PEFT adapter");
    for (String merged : new String[] {"full", "plora_full", "plora_momentum", "relora"}) {
      assertTrue(Files.isRegularFile(dir.resolve(merged).resolve("model.safetensors")), merged + ": merged model");
      assertFalse(Files.exists(dir.resolve(merged).resolve("checkpoints")), merged + ": no checkpoints kept");
    }
    assertFalse(Files.exists(dir.resolve("sweep")), "the other sweep runs are removed");
    for (String png : new String[] {"loss.png", "spectrum.png"}) {
      byte[] head = Arrays.copyOf(Files.readAllBytes(dir.resolve(png)), 8);
      assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, head, png + " is a PNG");
    }
  }

  @Test
  void badOptionsAndAForeignFolderExitWithCode2(@TempDir Path dir) throws Exception {
    StringWriter out = new StringWriter(), err = new StringWriter();
    assertEquals(2, Main.run(new PrintWriter(out, true), new PrintWriter(err, true), "demo", "lm", "--rank", "0",
        "--steps", "0", "--out", dir.resolve("x").toString()));
    assertTrue(err.toString().contains("--rank") && err.toString().contains("--steps"), err.toString());

    Files.writeString(dir.resolve("notes.txt"), "mine");
    StringWriter err2 = new StringWriter();
    assertEquals(2, Main.run(new PrintWriter(out, true), new PrintWriter(err2, true), "demo", "lm", "--steps", "1",
        "--out", dir.toString()));
    assertTrue(err2.toString().contains("--out") && err2.toString().contains("notes.txt"), err2.toString());
    assertEquals("mine", Files.readString(dir.resolve("notes.txt")), "nothing of the folder was touched");
  }

  private static double num(Object o) {
    return ((Number) o).doubleValue();
  }
}
